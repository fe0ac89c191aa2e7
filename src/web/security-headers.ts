import type { RequestHandler } from 'express';
import helmet from 'helmet';

// The pages run in a browser tab and inside ShotGrid's modal overlay, a cross-site iframe. So framing is allowed,
// but only to the listed ancestors, through CSP frame-ancestors; X-Frame-Options is left out because it can only
// say DENY or SAMEORIGIN, either of which breaks the modal. Everything a page uses is served by the service itself:
// no inline script, no third-party host (studio networks are often closed).

export interface SecurityHeaderOptions {
  /** CSP frame-ancestors sources (origins or 'self'); empty forbids framing. */
  frameAncestors: readonly string[];
  /** True when people reach the service over TLS: then insecure subresources are upgraded and HSTS is sent. */
  https: boolean;
  /**
   * Origins images may come from besides the service and any https: host. Thumbnails are short-lived signed URLs
   * on the site's storage (any https host, e.g. a CDN or S3); the sandbox's storage is plain http.
   */
  imageOrigins?: readonly string[];
}

export function securityHeaders(options: SecurityHeaderOptions): RequestHandler {
  const self = "'self'";
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: [self],
        baseUri: [self],
        connectSrc: [self],
        fontSrc: [self],
        formAction: [self],
        frameAncestors: options.frameAncestors.length > 0 ? [...options.frameAncestors] : ["'none'"],
        imgSrc: [self, 'data:', 'https:', ...(options.imageOrigins ?? [])],
        objectSrc: ["'none'"],
        scriptSrc: [self],
        scriptSrcAttr: ["'none'"],
        styleSrc: [self],
        ...(options.https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    xFrameOptions: false,
    // Only the service's own host: the studio's other hosts are not ours to pin to HTTPS.
    strictTransportSecurity: options.https ? { maxAge: 180 * 24 * 3600, includeSubDomains: false } : false,
  });
}

/** The configured ancestors, or else the origins of the given pages (the site, and the sandbox's menu page). */
export function resolveFrameAncestors(configured: readonly string[] | null, framingPages: readonly string[]): string[] {
  if (configured !== null) return [...configured];
  return [...new Set(framingPages.map((url) => new URL(url).origin))];
}
