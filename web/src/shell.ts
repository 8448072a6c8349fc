// What every page shares: sign-in (typed token or `#token=`), the role check against
// /api/me, the top bar with the link state, the language switch and sign-out.

import { Api, ApiError, forgetToken, initialToken, saveToken } from "./api";
import { h } from "./dom";
import { currentLang, onLang, setLang, t, tAgency } from "./i18n";
import type { LinkState } from "./live";
import type { Me } from "./types";

export type PageName = "console" | "terminal" | "coordinator";

const PAGE_PATH: Record<PageName, string> = {
  console: "/",
  terminal: "/terminal",
  coordinator: "/coordinator",
};

function signIn(page: PageName, error: string | null, start: (api: Api, me: Me) => void): void {
  const input = h("textarea", {
    id: "token-input",
    rows: 4,
    placeholder: t("token_hint"),
    "aria-label": t("token"),
    autocomplete: "off",
    spellcheck: "false",
  });
  const form = h(
    "form",
    { class: "signin card", id: "signin" },
    h("h1", {}, `${t("app")} · ${t(page)}`),
    h("label", { for: "token-input" }, t("token")),
    input,
    error ? h("p", { class: "error", role: "alert" }, `${t("bad_token")}: ${error}`) : null,
    h("button", { type: "submit", class: "primary big" }, t("sign_in")),
    langButton(),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    saveToken(token);
    void boot(page, start);
  });
  document.body.replaceChildren(form);
  input.focus();
}

export function langButton(): HTMLButtonElement {
  const b = h("button", { type: "button", class: "lang", id: "lang" }, t("lang"));
  b.addEventListener("click", () => setLang(currentLang() === "zh" ? "en" : "zh"));
  onLang(() => (b.textContent = t("lang")));
  return b;
}

/** Sign in, check the role belongs on this page, then run the page. */
export async function boot(page: PageName, start: (api: Api, me: Me) => void): Promise<void> {
  const token = initialToken();
  if (!token) {
    signIn(page, null, start);
    return;
  }
  const api = new Api(token);
  let me: Me;
  try {
    me = await api.me();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forgetToken();
      signIn(page, err.detail, start);
      return;
    }
    document.body.replaceChildren(
      h("div", { class: "card signin" }, h("h1", {}, t("app")), h("p", { class: "error" }, String(err))),
    );
    setTimeout(() => void boot(page, start), 3000);
    return;
  }
  if (me.page !== PAGE_PATH[page]) {
    document.body.replaceChildren(
      h(
        "div",
        { class: "card signin", id: "wrong-page" },
        h("h1", {}, t("app")),
        h("p", {}, `${t("wrong_page")} `, h("a", { href: me.page }, me.page)),
        h("button", { class: "secondary", onclick: () => signOut() }, t("sign_out")),
      ),
    );
    return;
  }
  start(api, me);
}

export function signOut(): void {
  forgetToken();
  location.reload();
}

export interface TopBar {
  el: HTMLElement;
  setLink(state: LinkState, since: number | null): void;
}

/** The bar across the top: title, who is signed in, link state, language, sign out. */
export function topBar(page: PageName, me: Me, extra: Node[] = []): TopBar {
  const pill = h("span", { class: "link link-connecting", id: "link-state", role: "status" }, t("pill_connecting"));
  const title = h("span", { class: "title" }, `${t("app")} · ${t(page)}`);
  const who = h("span", { class: "who" }, `${tAgency(me.agency)} · ${me.sub}`);
  const out = h("button", { class: "ghost", id: "sign-out", onclick: () => signOut() }, t("sign_out"));
  const el = h("header", { class: "bar" }, title, who, ...extra, h("span", { class: "spacer" }), pill, langButton(), out);
  let last: [LinkState, number | null] = ["connecting", null];
  const paint = () => {
    const [state] = last;
    pill.className = `link link-${state}`;
    // A short word: the banner under the bar says the rest.
    pill.textContent = t(`pill_${state}`);
  };
  onLang(() => {
    title.textContent = `${t("app")} · ${t(page)}`;
    who.textContent = `${tAgency(me.agency)} · ${me.sub}`;
    out.textContent = t("sign_out");
    paint();
  });
  return {
    el,
    setLink(state, since) {
      last = [state, since];
      paint();
    },
  };
}

/** A banner that says plainly the page is offline or resyncing (hidden while live). */
export function linkBanner(lostKey = "offline"): { el: HTMLElement; set(state: LinkState, since: number | null): void } {
  const el = h("div", { class: "banner hidden", id: "link-banner", role: "alert" });
  let last: [LinkState, number | null] = ["live", null];
  const paint = () => {
    const [state, since] = last;
    if (state === "live" || state === "connecting") {
      el.className = "banner hidden";
      el.textContent = "";
      return;
    }
    el.className = `banner banner-${state}`;
    const when = since ? ` · ${t("offline_since")} ${new Date(since).toLocaleTimeString()}` : "";
    el.textContent = (state === "offline" ? t(lostKey) : t("resyncing")) + when;
  };
  onLang(paint);
  return {
    el,
    set(state, since) {
      last = [state, since];
      paint();
    },
  };
}
