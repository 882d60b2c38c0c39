"""One origin per user, seen in a real browser (headless Debian chromium,
driven by Playwright): a page alice serves from her server, opened by the
admin, can read neither the admin's hub session nor the hub's API as the
admin, nor another user's server. The browser resolves the lab's names to
the proxy itself (--host-resolver-rules); the machine's DNS is not touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from labhub import LAB, User, lab_hub, proxy_url, server_url
from labkit import ROOT
from ydocclient import notebook

CHROMIUM = shutil.which("chromium")

# What a script on alice's origin tries, whatever way it got there (the
# page below, a future bug, an extension someone installed for her).
PROBE = """async ([hub, other]) => {
  const out = {origin: location.origin};
  try { out.cookies = document.cookie; } catch (e) { out.cookies = "blocked: " + e.name; }
  const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
  async function get(name, url) {
    try {
      const r = await fetch(url, {credentials: "include", headers: {"X-XSRFToken": xsrf}});
      out[name] = r.status + " " + (await r.text()).slice(0, 60);
    } catch (e) { out[name] = "blocked: " + e.name; }
  }
  await get("own_server", location.origin + location.pathname.replace(/lab$/, "api/status"));
  await get("hub_api_as_visitor", hub + "/hub/api/user");
  await get("other_users_server", other + "/api/status");
  return out;
}"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("SKIPPED: chromium is not installed (./twinhub installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    proxy = LAB.ip(LAB.group("proxy")[0])
    rules = f"MAP {LAB.hub_name} {proxy}, MAP *.{LAB.hub_name} {proxy}"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[f"--host-resolver-rules={rules}"])
        yield b
        b.close()


def logged_in(browser, hub, name: str):
    """A new browser page logged in to the hub as name through the form (on to their server if it runs).

    The lab CA is not in the browser's store: certificate errors are
    ignored, the origins (scheme, host, port) are the real ones.
    """
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.goto(f"{proxy_url()}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", hub.password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return page


def test_a_page_on_alices_server_cannot_act_for_the_admin_who_opens_it(browser):
    hub = lab_hub()
    alice, bob = User(hub, "alice"), User(hub, "bob")
    for user in (alice, bob):
        user.spawn("small")
    try:
        alice_url, bob_url = server_url(hub, alice.api, "alice"), server_url(hub, bob.api, "bob")
        # An HTML file of hers, written as the file browser does.
        page_html = "<!doctype html><title>probe</title><p>hello from alice</p>"
        r = alice.api.put(f"{alice_url}/api/contents/probe.html", json={"type": "file", "format": "text", "content": page_html})
        assert r.status_code in (200, 201), r.text
        page = logged_in(browser, hub, "admin")
        hub_cookies = {c["name"] for c in page.context.cookies(proxy_url())}
        assert any(name.startswith("__Host-") for name in hub_cookies), hub_cookies

        page.goto(f"{alice_url}/files/probe.html")
        # The hub asks the admin before it lets her into another user's
        # server (JupyterHub's OAuth consent page): she agrees.
        assert "/hub/api/oauth2/authorize" in page.url, page.url
        assert "alice" in page.inner_text("body")
        page.click("form [type=submit]")
        page.wait_for_url(f"{alice_url}/files/probe.html")
        assert "hello from alice" in page.inner_text("body")

        # A script that does run on alice's origin, in the admin's browser:
        # on her JupyterLab page (whose policy lets scripts fetch).
        page.goto(f"{alice_url}/lab")
        seen = page.evaluate(PROBE, [proxy_url(), bob_url])
        print(f"\nwhat alice's page saw in the admin's browser: {seen}")
        assert seen["origin"] == f"https://alice.{LAB.hub_name}", seen
        # The page does run and reaches its own server (the control) ...
        assert seen["own_server"].startswith("200"), seen
        # ... but not the hub as the admin, not another user's server, and
        # no hub cookie is visible to it.
        assert seen["hub_api_as_visitor"].startswith("blocked"), seen
        assert seen["other_users_server"].startswith("blocked"), seen
        assert "jupyterhub-hub-login" not in seen["cookies"], seen
        assert "__Host-" not in seen["cookies"], seen
    finally:
        # The home outlives the server: the probe goes, then the servers.
        alice.api.delete(f"{server_url(hub, alice.api, 'alice')}/api/contents/probe.html", timeout=30)
        for user in (alice, bob):
            user.stop_quietly()


def test_a_shared_notebook_alice_holds_opens_read_only_in_bobs_jupyterlab(browser):
    """Locks on shared/ (issue 20) as a person sees them: JupyterLab says read-only and will not save."""
    import uuid

    hub = lab_hub()
    alice, bob = User(hub, "alice"), User(hub, "bob")
    for user in (alice, bob):
        user.spawn("small")
    name = f"shared/browser-{uuid.uuid4().hex[:6]}.ipynb"
    alice_url, bob_url = server_url(hub, alice.api, "alice"), server_url(hub, bob.api, "bob")
    try:
        # alice saves it from her server: hers while she works on it.
        r = alice.api.put(f"{alice_url}/api/contents/{name}", json={"type": "notebook", "content": notebook()})
        assert r.status_code in (200, 201), r.text
        page = logged_in(browser, hub, "bob")
        page.goto(f"{bob_url}/lab/tree/{name}")
        label = page.locator(".jp-NotebookPanel .jp-ToolbarLabelComponent")
        label.first.wait_for(timeout=60000)
        shown = label.first.inner_text()
        page.screenshot(path=str(ROOT / ".cache" / "lab" / "browser-locked-notebook.png"))
        print(f"\nbob's JupyterLab on {name}: {shown!r}")
        assert "read-only" in shown
        # Save is refused in the page: JupyterLab tells him to save a copy.
        # JupyterLab first asks which kernel: none needed here.
        page.locator(".jp-Dialog").get_by_role("button", name="No Kernel").click(timeout=30000)
        page.locator(".jp-Notebook").first.click()
        page.keyboard.press("Control+s")
        page.get_by_text('Use "Save as').first.wait_for(timeout=10000)
        assert "x = 1" in (ROOT / ".cache" / "lab" / "storage-root" / name).read_text()
    finally:
        for leftover in (ROOT / ".cache" / "lab" / "storage-root" / "shared").glob(f"*{Path(name).stem}*"):
            leftover.unlink()
        for user in (alice, bob):
            user.stop_quietly()
