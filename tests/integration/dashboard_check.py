"""What a person sees on the dashboard, checked in headless Chromium against
the API's own answers (test_dashboard.sh prepares the daemon).

usage: dashboard_check.py BASE TOKEN OUTDIR DONE_ID RUNNING_ID CONV_ID REPLY_TEXT [READ_TOKEN]"""

import json
import os
import sys
import time
import urllib.request

from cdp import Browser, CDPError

base, token, outdir, done_id, running_id, conv_id, reply_text = sys.argv[1:8]
read_token = sys.argv[8] if len(sys.argv) > 8 else None
agent_text = "Yes, shoes too: 30% off until Sunday."
os.makedirs(outdir, exist_ok=True)
step = 0


def ok(msg):
    print("ok - " + msg, flush=True)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def api(path, method="GET", tok=None):
    req = urllib.request.Request(base + path, method=method, headers={"Authorization": "Bearer " + (tok or token)})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def shot(b, name):
    global step
    step += 1
    b.screenshot(os.path.join(outdir, "%s.png" % name))


def js(s):
    return json.dumps(s)


b = Browser(pid_file=os.path.join(outdir, "chromium.pid"))
try:
    # the token in the fragment: taken, kept in sessionStorage, removed from the URL
    b.goto(base + "/ui/#token=" + token)
    b.wait("document.querySelector('#campaigns table') !== null", what="the campaign list")
    if b.eval("location.hash") != "#/campaigns":
        fail("the token stayed in the address bar: " + b.eval("location.href"))
    if b.eval("sessionStorage.getItem('omnicast.token')") != token:
        fail("the token was not kept in sessionStorage")
    ok("the fragment token is taken and removed from the address bar")

    listed = b.wait(
        "(() => { const ids = [...document.querySelectorAll('#campaigns tbody tr td:first-child a')].map(a => a.textContent);"
        " return ids.includes(%s) && ids.includes(%s) ? ids : null })()" % (js(done_id), js(running_id)),
        what="both campaigns in the list",
    )
    ok("the list shows both campaigns: %s" % listed)
    shot(b, "campaigns")

    # the finished campaign: the funnel's numbers are the API's
    b.goto(base + "/ui/#/campaigns/" + done_id)
    b.wait("document.querySelector('svg.funnel') !== null", what="the funnel")
    c = api("/v1/campaigns/" + done_id)
    for stage in ("total", "sent", "delivered", "read", "replied", "opted_out"):
        expr = "(() => { const t = document.querySelector('g[data-stage=%s] .value'); return t ? t.getAttribute('data-value') : null })()" % stage
        got = b.wait(expr, what="funnel stage " + stage)
        if int(got) != int(c.get(stage, 0)):
            fail("funnel %s shows %s, the API says %s" % (stage, got, c.get(stage)))
    ok("the funnel of %s equals GET /v1/campaigns/%s (total %d, sent %d, replied %d)" % (done_id, done_id, c["total"], c["sent"], c["replied"]))
    for ch, counts in (c.get("channels") or {}).items():
        got = b.wait("(() => { const t = document.querySelector('tr[data-channel=%s] td[data-col=sent]'); return t ? t.textContent : null })()" % js(ch)[1:-1])
        if got.replace(",", "").replace("\u202f", "").replace(".", "") != str(counts["sent"]):
            fail("channel %s sent shows %s, the API says %d" % (ch, got, counts["sent"]))
    ok("per-channel counts shown as in the API")
    if b.eval("document.querySelector('#do-pause') !== null"):
        fail("a finished campaign offers Pause")
    shot(b, "campaign-done")

    # the running campaign: pause from the page pauses it
    b.goto(base + "/ui/#/campaigns/" + running_id)
    b.wait("document.querySelector('#do-pause') !== null", what="the Pause button")
    b.eval("document.querySelector('#do-pause').click()")
    b.wait("document.getElementById('confirm').open", what="the confirmation dialog")
    shot(b, "campaign-confirm")
    b.eval("document.getElementById('confirm-yes').click()")
    deadline = time.time() + 30
    while time.time() < deadline and api("/v1/campaigns/" + running_id)["state"] != "paused":
        time.sleep(0.2)
    if api("/v1/campaigns/" + running_id)["state"] != "paused":
        fail("Pause on the page did not pause %s" % running_id)
    b.wait("document.querySelector('#do-resume') !== null", what="the Resume button after the pause")
    b.wait("document.querySelector('.badge.s-paused') !== null", what="the paused badge")
    ok("Pause on the page paused %s (the API says paused; the page offers Resume)" % running_id)
    # the send rate chart draws once the page has a few samples
    b.wait("document.querySelector('svg.rate') !== null", timeout=120, what="the send-rate chart")
    shot(b, "campaign-running")

    # the conversation the reply opened
    b.goto(base + "/ui/#/conversations")
    b.wait("[...document.querySelectorAll('#conversations a')].some(a => a.getAttribute('href') === '#/conversations/%s')" % conv_id, what="the conversation in the inbox")
    ok("the inbox lists %s" % conv_id)
    shot(b, "conversations")
    b.goto(base + "/ui/#/conversations/" + conv_id)
    b.wait("[...document.querySelectorAll('.log .msg.in .text')].some(p => p.textContent === %s)" % js(reply_text), what="the reply in the log")
    ok("the conversation shows the reply %r" % reply_text)
    # the campaign message it answers comes first, rendered for this contact
    first = b.wait("(() => { const m = document.querySelector('.log .msg'); return m && m.classList.contains('out') ? m.querySelector('.text').textContent : null })()", what="the campaign message first")
    if "Ana" not in first:
        fail("the first entry is not the campaign message rendered for Ana: %r" % first)
    ok("the log starts with the campaign message it answers: %r" % first)
    # an agent's answer from the page: queued, then sent (the outbox took it)
    b.eval("document.getElementById('reply').value = %s; document.getElementById('send').click()" % js(agent_text))
    b.wait("[...document.querySelectorAll('.log .msg.out')].some(m => m.querySelector('.text').textContent === %s && m.querySelector('.tick.t-sent, .tick.t-delivered, .tick.t-read'))" % js(agent_text), what="the agent's message with its sent tick")
    ok("a reply sent from the page shows in the log with its tick")
    shot(b, "conversation")

    # operations: the connectors as the daemon runs them
    b.goto(base + "/ui/#/operations")
    names = b.wait("(() => { const r = [...document.querySelectorAll('tr[data-connector]')].map(t => t.dataset.connector); return r.length ? r : null })()", what="the connectors")
    want = sorted(x["name"] for x in api("/v1/connectors")["connectors"])
    if sorted(names) != want:
        fail("operations shows %s, the API %s" % (names, want))
    ok("operations lists the connectors %s" % want)

    # the halted instance: its state in words and a Resume button
    b.wait("document.querySelector('tr[data-connector=wa] .s-halted') !== null", what="wa shown halted")
    reason = b.eval("document.querySelector('tr[data-connector=wa] code').textContent")
    b.eval("document.querySelector('tr[data-connector=wa] button').click()")
    b.wait("document.getElementById('confirm').open", what="the resume confirmation")
    b.eval("document.getElementById('confirm-yes').click()")
    deadline = time.time() + 30
    while time.time() < deadline and [c for c in api("/v1/connectors")["connectors"] if c["name"] == "wa"][0]["halted"]:
        time.sleep(0.2)
    if [c for c in api("/v1/connectors")["connectors"] if c["name"] == "wa"][0]["halted"]:
        fail("Resume on the page did not resume wa")
    b.wait("document.querySelector('tr[data-connector=wa] .s-sending') !== null", what="wa shown sending again")
    ok("the halted connector (%s) resumed from the page" % reason)

    # the dead letter test_dashboard.sh queued, replayed from the page: it
    # goes back onto the queue and (still a bad job) dies again
    before = api("/v1/dead?count=200")["dead"]
    first = before[0]["id"]
    b.wait("document.querySelector('li[data-dead=\"%s\"] button') !== null" % first, what="the dead letter with its Replay button")
    b.eval("document.querySelector('li[data-dead=\"%s\"] button').click()" % first)
    b.wait("document.getElementById('confirm').open", what="the replay confirmation")
    b.eval("document.getElementById('confirm-yes').click()")
    deadline = time.time() + 30
    while time.time() < deadline and len(api("/v1/dead?count=200")["dead"]) == len(before):
        time.sleep(0.2)
    after = api("/v1/dead?count=200")["dead"]
    if len(after) != len(before) + 1 or after[0]["job"] != before[0]["job"]:
        fail("Replay on the page did not requeue the job (%d dead letters before, %d after)" % (len(before), len(after)))
    ok("Replay on the page requeued the dead job (it died again: %s)" % after[0]["reason"])

    # suppressions: add from the page, then remove
    b.wait("document.querySelector('#supp-channel option') !== null", what="the suppression channels")
    b.eval("(() => { const s = document.getElementById('supp-channel'); s.value = 'sms'; s.dispatchEvent(new Event('change')); })()")
    b.eval("document.getElementById('supp-address').value = '+1 555 000 0099'; document.getElementById('supp-add').click()")
    deadline = time.time() + 30
    while time.time() < deadline and "+15550000099" not in api("/v1/suppressions/sms")["addresses"]:
        time.sleep(0.2)
    if "+15550000099" not in api("/v1/suppressions/sms")["addresses"]:
        fail("Suppress on the page did not add +15550000099")
    b.wait("document.querySelector('li[data-address=\"+15550000099\"]') !== null", what="the suppressed address listed")
    shot(b, "operations")
    b.eval("document.querySelector('li[data-address=\"+15550000099\"] button').click()")
    b.wait("document.getElementById('confirm').open", what="the remove confirmation")
    b.eval("document.getElementById('confirm-yes').click()")
    deadline = time.time() + 30
    while time.time() < deadline and "+15550000099" in api("/v1/suppressions/sms")["addresses"]:
        time.sleep(0.2)
    if "+15550000099" in api("/v1/suppressions/sms")["addresses"]:
        fail("Remove on the page did not remove +15550000099")
    ok("a suppression added and removed from the page (normalized to +15550000099)")

    # a phone, in the dark
    b.viewport(390, 844, mobile=True, dark=True)
    b.goto(base + "/ui/#/campaigns/" + done_id)
    b.wait("document.querySelector('svg.funnel') !== null", what="the funnel on a phone")
    dark = b.eval("getComputedStyle(document.body).backgroundColor")
    if dark in ("rgb(255, 255, 255)", "rgb(246, 247, 249)"):
        fail("the dark scheme was not applied: background " + dark)
    width = b.eval("document.documentElement.scrollWidth")
    if width > 400:
        wide = b.eval("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 392).slice(0, 6).map(e => e.tagName + ' ' + e.getAttribute('class') + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ')")
        fail("the campaign page is %dpx wide on a 390px phone: %s" % (width, wide))
    ok("readable on a phone in the dark (no sideways scroll, background %s)" % dark)
    shot(b, "campaign-phone-dark")
    b.viewport(1280, 900)

    # a wrong token: words, not a stack trace
    b.eval("sessionStorage.setItem('omnicast.token', 'not-a-token'); location.hash = '#/operations'")
    msg = b.wait("(() => { const e = document.querySelector('.gate .error'); return e ? e.textContent : null })()", what="the refusal in words")
    if "token" not in msg.lower():
        fail("a refused token shows %r" % msg)
    ok("a refused token is told in words: %r" % msg)

    if read_token:
        b.eval("sessionStorage.setItem('omnicast.token', %s)" % js(read_token))
        b.goto(base + "/ui/#/campaigns/" + done_id)
        b.wait("document.querySelector('svg.funnel') !== null", what="the funnel with a read token")
        b.goto(base + "/ui/#/campaigns/" + running_id)
        b.wait("document.querySelector('.badge.s-paused') !== null", what="the running campaign with a read token")
        if b.eval("document.querySelector('#do-resume, #do-cancel, #do-pause') !== null"):
            fail("a read-only token is offered campaign controls")
        b.goto(base + "/ui/#/conversations/" + conv_id)
        b.wait("document.querySelector('.log .msg.in') !== null", what="the conversation with a read token")
        if b.eval("document.getElementById('reply') !== null"):
            fail("a read-only token is offered the reply box")
        ok("a read-only token sees the campaign and the conversation, and no controls")

    # the refused token above answered 401 on purpose
    problems = [p for p in b.problems if "status of 401" not in p]
    if problems:
        fail("the browser reported: " + "; ".join(problems[:5]))
    ok("no script error or Content-Security-Policy violation in the browser")
except CDPError as e:
    fail(str(e))
finally:
    b.close()
