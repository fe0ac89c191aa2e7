// The page's MD5 worker: hashes one part (a Blob slice of the chosen file) off the main thread, so progress
// bars and buttons stay responsive while parts are read. Messages: {id, blob} in, {id, md5} or {id, error} out.

import { md5OfBlob } from './md5.js';

self.addEventListener('message', async (event) => {
  const { id, blob } = event.data;
  try {
    self.postMessage({ id, md5: await md5OfBlob(blob) });
  } catch (error) {
    // A file moved or changed on disk since it was chosen cannot be read (NotReadableError).
    self.postMessage({ id, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
});
