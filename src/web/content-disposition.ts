// Content-Disposition for a download: an ASCII fallback for old clients and the exact UTF-8 name as RFC 6266 /
// RFC 5987 `filename*`. Names come from the tracker: quotes, backslashes, control characters and path
// separators never reach the header.

export function attachmentDisposition(name: string): string {
  const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_');
  const ascii = cleaned.normalize('NFKD').replace(/[^\x20-\x7e]|["%]/g, '_');
  const encoded = encodeURIComponent(cleaned).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
