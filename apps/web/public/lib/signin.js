// @ts-check
/**
 * The sign-in box: shown when the API answers 401 (no key yet, or a key that is wrong or was
 * revoked), it takes an API key, checks it with one request and keeps it for this tab
 * (lib/api.js: sessionStorage). "Sign out" forgets it. Without keys (an API on loopback with
 * none made) no request is refused, and the box never shows.
 *
 * TESTIDS: signin (the box), signin-message (why it shows), signin-key (<input>),
 * signin-submit, signin-error (a key the API refused), signout (header button, while a key is kept)
 */
import { ApiError, UNAUTHORIZED_EVENT, api, apiKey, setApiKey } from './api.js';
import { h, replace } from './dom.js';

/**
 * @param {HTMLElement} header  where the sign-out button goes
 * @param {HTMLElement} before  the box is put before this element (the page)
 * @param {() => void} signedIn  after a key was accepted (reloads the page)
 */
export function installSignIn(header, before, signedIn) {
  const message = h('p', { testid: 'signin-message' });
  const error = h('p', { class: 'notice notice-error', testid: 'signin-error', hidden: true });
  const input = /** @type {HTMLInputElement} */ (
    h('input', {
      type: 'password',
      testid: 'signin-key',
      placeholder: 'mgk_…',
      autocomplete: 'off',
      required: true,
      'aria-label': 'API key',
    })
  );
  const box = h(
    'section',
    { class: 'card signin', testid: 'signin', hidden: true },
    h('h2', {}, 'Sign in'),
    message,
    h(
      'form',
      {
        class: 'row',
        onsubmit: (/** @type {Event} */ e) => {
          e.preventDefault();
          void submit();
        },
      },
      input,
      h('button', { type: 'submit', testid: 'signin-submit' }, 'Sign in'),
    ),
    h(
      'p',
      { class: 'muted small' },
      'An admin makes keys with "miniglm keys create --name NAME --role member". The key is kept for this tab only.',
    ),
    error,
  );
  before.before(box);

  const signOut = /** @type {HTMLButtonElement} */ (
    h(
      'button',
      {
        type: 'button',
        class: 'link',
        testid: 'signout',
        onclick: () => {
          setApiKey(null);
          location.reload();
        },
      },
      'Sign out',
    )
  );
  header.append(signOut);
  const showSignOut = () => (signOut.hidden = !apiKey());
  showSignOut();

  /** @param {string} why */
  const show = (why) => {
    replace(message, apiKey() ? `The API refused this tab's key: ${why}` : 'This API needs a key.');
    box.hidden = false;
    input.focus();
  };
  // While a typed key is being tried, its 401 is shown as the box's error, not as a new prompt.
  let checking = false;
  window.addEventListener(UNAUTHORIZED_EVENT, (event) => {
    if (!checking) show(/** @type {CustomEvent<string>} */ (event).detail);
  });

  const submit = async () => {
    const previous = apiKey();
    setApiKey(input.value.trim());
    checking = true;
    try {
      await api('/v1/runs?limit=1');
      input.value = '';
      error.hidden = true;
      box.hidden = true;
      showSignOut();
      signedIn();
    } catch (e) {
      setApiKey(previous);
      error.hidden = false;
      replace(error, e instanceof ApiError ? e.message : String(e));
    } finally {
      checking = false;
    }
  };
}
