/* The certificate page's check made again in the browser: the exchange's Ed25519 signature over the
 * RFC 8785 form of the signed fields (key from the JWKS), and the sha256 of the RFC 8785 form of the
 * certified revision against the signed digest. No inline script: the data comes from JSON elements. */
(function () {
  "use strict";

  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function b64ToBytes(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var raw = atob(s), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  async function check(box) {
    var payload = data("certificate-payload");
    var sig = data("certificate-signature");
    var digested = data("certificate-digested");
    if (!payload || !sig || !digested || !window.crypto || !crypto.subtle) { return false; }
    var digest = hex(await crypto.subtle.digest("SHA-256", JCS.canonicalBytes(digested)));
    if (digest !== payload.digest) { return false; }
    var response = await fetch(box.dataset.jwksUrl, { credentials: "omit" });
    if (!response.ok) { return false; }
    var jwks = await response.json();
    var jwk = (jwks.keys || []).filter(function (k) { return k.kid === sig.key_id; })[0];
    if (!jwk || jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || payload.key_id !== sig.key_id) { return false; }
    var key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" },
                                            false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, b64ToBytes(sig.signature), JCS.canonicalBytes(payload));
  }

  function show(box, ok) {
    box.textContent = ok ? box.dataset.verifiedText : box.dataset.failedText;
    box.classList.remove("verified", "failed");
    box.classList.add(ok ? "verified" : "failed");
  }

  function start() {
    var box = document.getElementById("browser-check");
    if (!box) { return; }
    box.textContent = box.dataset.checkingText;
    check(box).then(function (ok) { show(box, ok === true); }, function () { show(box, false); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
