// Lets xterm.js style its terminal under a CSP without 'unsafe-inline'.
//
// xterm.js writes its theme and cell-size rules into <style> elements it
// creates; the pages' CSP (style-src 'self') rightly refuses inline style
// elements. Here every <style> element created by script gets its text
// routed into a constructable stylesheet adopted by the document, which
// CSP does not govern: the rules apply, and the policy stays strict. The
// element itself stays empty.
"use strict";

(() => {
  if (!("adoptedStyleSheets" in Document.prototype)) return;
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (tag, options) {
    const el = create.call(this, tag, options);
    if (String(tag).toLowerCase() !== "style") return el;
    const doc = this;
    const sheet = new CSSStyleSheet();
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
    let css = "";
    const set = (v) => { css = String(v == null ? "" : v); sheet.replaceSync(css); };
    Object.defineProperty(el, "textContent", { get: () => css, set, configurable: true });
    Object.defineProperty(el, "innerText", { get: () => css, set, configurable: true });
    Object.defineProperty(el, "sheet", { get: () => sheet, configurable: true });
    const remove = el.remove.bind(el);
    el.remove = () => {
      doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet);
      remove();
    };
    return el;
  };
})();
