/**
 * The one place a Graph API URL is put together: base (a trailing slash tolerated), pinned
 * version, the node id (encoded: it comes from config), then the edge and query as given.
 */
export function graphUrl(cfg: { apiBase: string; graphVersion: string }, nodeId: string, rest: string): string {
  return `${cfg.apiBase.replace(/\/+$/, "")}/${cfg.graphVersion}/${encodeURIComponent(nodeId)}${rest}`;
}
