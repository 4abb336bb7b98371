/* RFC 8785 JSON Canonicalization Scheme (JCS), small and dependency-free.
 * Keys sorted by UTF-16 code units (JavaScript's default string order), numbers in ECMAScript's
 * Number-to-String form (JSON.stringify's; -0 is 0), strings escaped as JSON.stringify does (RFC 8785
 * section 3.2.2.2: \b \t \n \f \r \" \\ and \u00xx for other controls, everything else as is).
 * Browser: window.JCS.canonicalize(value) -> string; node: require("./jcs.js").canonicalize. */
(function (root) {
  "use strict";

  function serialize(value) {
    if (value === null) { return "null"; }
    switch (typeof value) {
      case "boolean":
        return value ? "true" : "false";
      case "number":
        if (!isFinite(value)) { throw new TypeError("JCS: numbers must be finite"); }
        return JSON.stringify(value);
      case "string":
        if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value)) {
          throw new TypeError("JCS: lone surrogate in a string");
        }
        return JSON.stringify(value);
      case "object":
        if (Array.isArray(value)) {
          return "[" + value.map(serialize).join(",") + "]";
        }
        return "{" + Object.keys(value).sort().map(function (key) {
          return JSON.stringify(key) + ":" + serialize(value[key]);
        }).join(",") + "}";
      default:
        throw new TypeError("JCS: cannot canonicalize a " + typeof value);
    }
  }

  function canonicalize(value) { return serialize(value); }

  /* The canonical form's UTF-8 bytes (what is hashed and signed). */
  function canonicalBytes(value) { return new TextEncoder().encode(serialize(value)); }

  var api = { canonicalize: canonicalize, canonicalBytes: canonicalBytes };
  if (typeof module !== "undefined" && module.exports) { module.exports = api; }
  if (root) { root.JCS = api; }
})(typeof globalThis !== "undefined" ? globalThis : (typeof window !== "undefined" ? window : this));
