/** Signing up and signing in (identity's Register and Login through the edge). */
import { clearSession, errorText, identity, saveSession } from "./api.js";
import { formValues, h } from "./dom.js";
import { draft, render, show, state } from "./state.js";

async function signIn(username: string, password: string): Promise<void> {
  const login = await identity.login({ username, password });
  state.session = saveSession(login.accessToken, login.user, login.expiresInSeconds);
}

async function submit(event: Event): Promise<void> {
  event.preventDefault();
  const form = event.currentTarget as HTMLFormElement;
  const values = formValues(form);
  const button = form.querySelector("button[type=submit]") as HTMLButtonElement;
  button.disabled = true;
  try {
    if (state.accountMode === "signup") {
      await identity.register({
        username: values.username,
        email: values.email,
        password: values.password,
        displayName: values.display_name,
      });
    }
    await signIn(values.username, values.password);
    delete state.drafts[state.accountMode];
    const welcome = `Signed in as ${state.session?.displayName}.`;
    show(state.cart.length ? "cart" : "account", { kind: "success", text: welcome });
  } catch (error) {
    button.disabled = false;
    state.notice = { kind: "error", text: errorText(error) };
    render("side");
  }
}

export function signOut(): void {
  state.watching?.abort();
  clearSession();
  state.session = null;
  state.recent = [];
  state.accountMode = "signin";
  show("account", { kind: "info", text: "You are signed out." });
}

function field(form: string, name: string, label: string, attributes: Record<string, string | boolean> = {}) {
  const values = draft(form);
  return h(
    "label",
    {},
    h("span", {}, label),
    h("input", {
      name,
      value: values[name] ?? "",
      oninput: (e: Event) => {
        values[name] = (e.target as HTMLInputElement).value;
      },
      ...attributes,
    }),
  );
}

export function renderAccount(): HTMLElement {
  const s = state.session;
  if (s) {
    return h(
      "section",
      { class: "panel", "aria-labelledby": "account-title" },
      h("h2", { id: "account-title" }, "Your account"),
      h("p", { "data-testid": "signed-in" }, `Signed in as ${s.displayName} (${s.username}).`),
      h("button", { type: "button", onclick: signOut }, "Sign out"),
    );
  }
  const signup = state.accountMode === "signup";
  const mode = state.accountMode;
  const form = h(
    "form",
    { class: "stack", "aria-label": signup ? "Sign up" : "Sign in", onsubmit: (e: Event) => void submit(e) },
    field(mode, "username", "Username", { required: true, autocomplete: "username" }),
    signup && field(mode, "email", "Email", { type: "email", required: true, autocomplete: "email" }),
    signup && field(mode, "display_name", "Your name", { autocomplete: "name" }),
    field(mode, "password", "Password", {
      type: "password",
      required: true,
      autocomplete: signup ? "new-password" : "current-password",
    }),
    h("button", { type: "submit", class: "primary" }, signup ? "Create account" : "Sign in"),
  );
  const other = () => {
    state.accountMode = signup ? "signin" : "signup";
    state.notice = null;
    render("side");
  };
  return h(
    "section",
    { class: "panel", "aria-labelledby": "account-title" },
    h("h2", { id: "account-title" }, signup ? "Create an account" : "Sign in"),
    form,
    h(
      "p",
      { class: "muted" },
      signup ? "Already have an account? " : "New here? ",
      h("button", { type: "button", class: "link", onclick: other }, signup ? "Sign in" : "Create an account"),
    ),
  );
}

