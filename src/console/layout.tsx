import type { Child } from "hono/jsx";

export type Section = "timeline" | "operations" | "preview" | "login";

const sections: Array<{ id: Section; href: string; label: string }> = [
  { id: "timeline", href: "/console", label: "Timeline" },
  { id: "operations", href: "/console/operations", label: "Operations" },
  { id: "preview", href: "/console/preview", label: "Preview" },
];

/** Every page: one stylesheet from 'self', no script. */
export function Layout(props: { title: string; here: Section; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · fhir-notify console`}</title>
        <link rel="stylesheet" href="/console/console.css" />
        <link rel="icon" href="/console/favicon.svg" type="image/svg+xml" />
      </head>
      <body>
        <header>
          <span class="brand">fhir-notify console</span>
          {props.here !== "login" && (
            <nav>
              {sections.map((s) => (
                <a href={s.href} class={s.id === props.here ? "here" : ""}>
                  {s.label}
                </a>
              ))}
              <a href="/admin/queues">Queues (Bull Board)</a>
            </nav>
          )}
        </header>
        <main>{props.children}</main>
      </body>
    </html>
  );
}

/** A page that says what went wrong in plain words (a bad filter, an unknown id). */
export function Problem(props: { title: string; message: string; back?: string }) {
  return (
    <Layout title={props.title} here="timeline">
      <h1>{props.title}</h1>
      <div class="notice bad">{props.message}</div>
      <a href={props.back ?? "/console"}>Back</a>
    </Layout>
  );
}
