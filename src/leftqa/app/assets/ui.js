() => {
  // Clicking a marker scrolls its source into view (opening "earlier answers" when needed) and flashes it;
  // hovering marks the card. Delegated from the document because chat bubbles are re-rendered on every turn.
  const target = (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#lq-src-"]') : null;
    return a ? [a, document.getElementById(a.getAttribute("href").slice(1))] : [null, null];
  };
  document.addEventListener("click", (ev) => {
    const [a, el] = target(ev);
    if (!a) return;
    ev.preventDefault();
    if (!el) return;
    for (let d = el.closest("details"); d; d = d.parentElement.closest("details")) d.open = true;
    el.scrollIntoView({behavior: "smooth", block: "center"});
    el.classList.remove("lq-flash");
    void el.offsetWidth;
    el.classList.add("lq-flash");
  });
  document.addEventListener("mouseover", (ev) => { const [, el] = target(ev); if (el) el.classList.add("lq-hover"); });
  document.addEventListener("mouseout", (ev) => { const [, el] = target(ev); if (el) el.classList.remove("lq-hover"); });
}
