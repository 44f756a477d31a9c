import { Layout } from "./layout.js";

/** With ADMIN_TOKEN set, a browser signs in once with it; the console then keeps an HttpOnly cookie. */
export function LoginPage(props: { failed?: boolean }) {
  return (
    <Layout title="Sign in" here="login">
      <h1>Sign in</h1>
      {props.failed === true && <div class="notice bad">That is not the admin token.</div>}
      <form class="card" method="post" action="/console/login">
        <p>
          <label>
            Admin token (ADMIN_TOKEN)
            <br />
            <input type="password" name="token" autocomplete="current-password" required />
          </label>
        </p>
        <button type="submit">Sign in</button>
      </form>
    </Layout>
  );
}
