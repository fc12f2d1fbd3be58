// MathJax 3 settings for pymdownx.arithmatex's generic output: only the spans and divs it
// marks are typeset, so a lone "$" elsewhere on a page stays a dollar sign. MathJax itself
// is shipped with the site (tex-svg.js, no web fonts), so math renders with no network.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

// mkdocs-material swaps page content without a reload when instant navigation is on;
// typeset again after each swap. Without it, MathJax's own startup typesets the page.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
