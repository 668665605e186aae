// The ipywidgets HTML manager (@jupyter-widgets/html-manager 1.x) typesets widget labels with the
// MathJax 2 call `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`; the book loads MathJax 3,
// which has no `Hub`, so every widget page would throw. This gives each object assigned to
// `window.MathJax` (the configuration first, then MathJax 3 itself) a hidden `Hub` whose `Queue`
// typesets the element with MathJax 3. Loaded before the widget manager (see _config.yml).
(function () {
  "use strict";
  function typeset(jobs) {
    var mj = window.MathJax;
    if (!mj || typeof mj.typesetPromise !== "function") {
      return;                       // MathJax 3 typesets the whole page itself once it has loaded
    }
    var elements = jobs.map(function (job) { return Array.isArray(job) ? job[2] : undefined; })
                       .filter(function (el) { return el instanceof Element; });
    mj.typesetPromise(elements.length ? elements : undefined).catch(function () {});
  }
  function withHub(mj) {
    if (mj && typeof mj === "object" && !Object.prototype.hasOwnProperty.call(mj, "Hub")) {
      Object.defineProperty(mj, "Hub", {
        configurable: true, enumerable: false,   // hidden from MathJax 3's reading of its config
        value: { Queue: function () { typeset(Array.prototype.slice.call(arguments)); } }
      });
    }
    return mj;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true, enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); }
  });
})();
