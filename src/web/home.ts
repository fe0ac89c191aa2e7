import type { RequestHandler } from 'express';
import { allActions } from '../actions/registry.ts';

// The page someone sees when they open the service's address directly rather than through ShotGrid's menu.

export function homePage(options: { sandboxMenuUrl: string | undefined }): RequestHandler {
  return (_req, res) => {
    res.render('home', {
      title: 'ami-transfer',
      actions: allActions(),
      sandboxMenuUrl: options.sandboxMenuUrl,
    });
  };
}
