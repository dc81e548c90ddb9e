/* Nurture's website tracker. Put in every page:
     <script async src="https://NURTURE/tracker.js" data-site="nsk_…"></script>
   It records page views under a first-party anonymous visitor id (a cookie on your site, not ours), with the
   address (UTM parameters included), the title and the referrer. Nothing is sent while the browser asks not to be
   tracked (Do-Not-Track, Global Privacy Control), nor, with data-consent="required", before the page calls
   nurture.consent(true). Forms marked data-nurture-form get the visitor id, so sending one names the visitor. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.nurture) return;
  var key = script.getAttribute("data-site") || "";
  var endpoint = new URL("/t/hit", script.src).href;
  var VISITOR = "nurture_vid", CONSENT = "nurture_consent", YEAR = 60 * 60 * 24 * 365;

  function readCookie(name) {
    var found = document.cookie.split("; ").filter(function (c) { return c.indexOf(name + "=") === 0; })[0];
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }
  function writeCookie(name, value) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" + YEAR + "; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }
  function randomId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function optedOut() {
    return navigator.doNotTrack === "1" || window.doNotTrack === "1" || navigator.globalPrivacyControl === true;
  }
  function consented() {
    return script.getAttribute("data-consent") !== "required" || readCookie(CONSENT) === "yes";
  }
  function visitorId() {
    var id = readCookie(VISITOR) || randomId();
    writeCookie(VISITOR, id);  // renewed on each view: a visitor who keeps coming back keeps one id
    return id;
  }
  function nameForms(id) {
    var inputs = document.querySelectorAll("form[data-nurture-form] input[name=nurture_visitor]");
    Array.prototype.forEach.call(inputs, function (input) { input.value = id; });
  }
  function track() {
    if (!key || optedOut() || !consented()) return false;
    var id = visitorId();
    var body = JSON.stringify({k: key, v: id, i: randomId(), u: location.href, t: document.title.slice(0, 300),
                               r: document.referrer, c: true});
    // text/plain is a simple request: the browser sends it without asking the server first (no preflight).
    var sent = navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], {type: "text/plain"}));
    if (!sent) fetch(endpoint, {method: "POST", body: body, keepalive: true, mode: "no-cors"});
    nameForms(id);
    return true;
  }
  window.nurture = {
    consent: function (yes) { writeCookie(CONSENT, yes ? "yes" : "no"); if (yes) track(); },
    track: track
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", track); else track();
})();
