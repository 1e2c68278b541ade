// Keyboard shortcuts of the alert queue: j/k move, o or Enter opens,
// x ticks the row, / goes to the search field. Written for turncoat.
(function () {
  "use strict";
  const rows = Array.from(document.querySelectorAll("#queue tbody tr"));
  let at = -1;
  function mark(i) {
    if (rows.length === 0) return;
    if (at >= 0) rows[at].removeAttribute("aria-selected");
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows[at].setAttribute("aria-selected", "true");
    rows[at].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    const t = e.target;
    if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j") mark(at + 1);
    else if (e.key === "k") mark(at - 1);
    else if ((e.key === "o" || e.key === "Enter") && at >= 0) {
      const link = rows[at].querySelector("a");
      if (link) link.click();
    } else if (e.key === "x" && at >= 0) {
      const box = rows[at].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
    } else if (e.key === "/") {
      const search = document.querySelector("input[name=q]");
      if (search) { e.preventDefault(); search.focus(); }
    } else return;
  });
})();
