import type { SiteUser, SiteUsers } from '../site-users.ts';
import type { FtrackApi } from './api.ts';
import { quoted } from './entities.ts';

// ftrack's users by username, read as the service's own user (an administrator sees every user).

/** ftrack usernames are short; anything longer is no one's, and is not sent. */
const MAX_USERNAME_LENGTH = 256;

export class FtrackUsers implements SiteUsers {
  readonly #api: FtrackApi;

  constructor(api: FtrackApi) {
    this.#api = api;
  }

  async findUser(login: string): Promise<SiteUser | null> {
    if (login === '' || login.length > MAX_USERNAME_LENGTH) return null;
    const found = await this.#api.query(null, `select id, username, is_active from User where username is ${quoted(login)} limit 1`);
    const user = found[0];
    if (user === undefined || user['is_active'] !== true || typeof user.id !== 'string' || user['username'] !== login) return null;
    return { id: user.id, login };
  }
}
