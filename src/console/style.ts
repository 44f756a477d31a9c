/**
 * The console's whole stylesheet, served at /console/console.css (the CSP allows styles from
 * 'self' only, so there is no inline style anywhere). Plain CSS, no build step: change it here.
 */
export const consoleCss = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #f6f7f9; --card: #fff; --accent: #1f5fbf;
  --ok: #1c7c3a; --warn: #9a6200; --bad: #b3261e; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); font-size: 15px; line-height: 1.45; }
header { background: #14213d; color: #fff; padding: 0 1.5rem; display: flex; gap: 2rem; align-items: center; height: 3.2rem; }
header .brand { font-weight: 600; letter-spacing: .02em; }
header nav a { color: #cfd8ea; text-decoration: none; margin-right: 1.2rem; padding: .35rem 0; }
header nav a.here { color: #fff; border-bottom: 2px solid #8fb3ff; }
main { padding: 1.2rem 1.5rem 3rem; max-width: 1280px; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .6rem; }
a { color: var(--accent); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.2rem; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f6; font-weight: 600; font-size: .85rem; color: var(--muted); }
td.mono, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .85rem; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: flex-end; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); gap: .2rem; }
select, input, textarea { font: inherit; padding: .3rem .4rem; border: 1px solid #b9c1cf; border-radius: 4px; background: #fff; }
textarea { width: 100%; min-height: 14rem; font-family: ui-monospace, Menlo, monospace; font-size: .85rem; }
button, .button { font: inherit; padding: .38rem .9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
.counts { display: flex; flex-wrap: wrap; gap: .5rem; margin: 0 0 1rem; padding: 0; list-style: none; }
.counts a { display: block; padding: .35rem .7rem; border: 1px solid var(--line); border-radius: 999px; background: #fff; text-decoration: none; color: var(--fg); font-size: .85rem; }
.counts a.here { border-color: var(--accent); box-shadow: inset 0 0 0 1px var(--accent); }
.counts b { margin-left: .35rem; }
.state { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem; border: 1px solid currentColor; }
.state.good { color: var(--ok); } .state.bad { color: var(--bad); } .state.wait { color: var(--warn); } .state.neutral { color: var(--muted); }
.muted { color: var(--muted); }
.pager { margin-top: .8rem; display: flex; gap: 1rem; align-items: center; }
ol.steps { padding-left: 1.2rem; } ol.steps li { margin-bottom: .5rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.2rem; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
.notice { border-left: 4px solid var(--warn); background: #fff8e6; padding: .6rem .9rem; margin-bottom: 1rem; }
.notice.bad { border-color: var(--bad); background: #fdecea; } .notice.good { border-color: var(--ok); background: #eaf6ee; }
.message { white-space: pre-wrap; background: #e7f7dc; border-radius: 8px; padding: .7rem .9rem; max-width: 34rem; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
`;

/** A plain icon, so browsers do not ask for /favicon.ico (which the service does not have). */
export const consoleIcon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#14213d"/><path d="M4 8h8M8 4v8" stroke="#8fb3ff" stroke-width="2"/></svg>`;
