import { request } from 'undici';
import { servePassThrough } from './pass-through-server.ts';

// The minimal pass-through the upload bench measures the service against (bench/upload-bench.ts): an HTTP
// server, in a process of its own like the service, whose only handler pipes the request body into one undici
// request to the storage URL it is given (`PUT /?url=<presigned storage URL>`, with the same Content-Length and no
// other header: storage's upload links sign the host only, so a Content-MD5 or any x-amz-* header is refused 403,
// and one sent to the pass-through is not forwarded; a link that signs headers comes with them, `&headers=<JSON>`,
// and those are sent) and answers with storage's status and ETag. Nothing else: no
// routing, no state, no hashing, no retries: the least any service that streams an upload through itself to
// storage must do.
//
// Env: PASS_THROUGH_PORT (0 = any), PASS_THROUGH_HOST (127.0.0.1). Prints "listening <port>" when ready.

servePassThrough((req, res) => {
  void (async () => {
    const query = new URL(req.url ?? '/', 'http://pass-through').searchParams;
    const url = query.get('url');
    const signed = JSON.parse(query.get('headers') ?? '{}') as Record<string, string>;
    if (url === null || req.headers['content-length'] === undefined) {
      req.resume();
      res.writeHead(400).end('PUT /?url=<storage URL> with a Content-Length\n');
      return;
    }
    try {
      const response = await request(url, { method: 'PUT', headers: { ...signed, 'content-length': req.headers['content-length'] }, body: req });
      const text = await response.body.text();
      const etag = response.headers.etag;
      res.writeHead(response.statusCode, typeof etag === 'string' ? { etag } : {});
      res.end(response.statusCode === 200 ? undefined : text);
    } catch (error) {
      if (!res.headersSent) res.writeHead(502);
      res.end(`pass-through: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  })();
});
