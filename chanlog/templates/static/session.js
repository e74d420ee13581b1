// chanlog's session page (included inline by session.html.j2, so one page works alone from file://).
// Loads Mermaid from the section's data-mermaid-js; when it cannot load, shows #mermaid-missing (names
// --mermaid-js). Draws each diagram part when it comes near the viewport (IntersectionObserver; Mermaid's
// startOnLoad off, mermaid.run on that part only), so a long page opens at once. Each numbered arrow links to
// its frame. The sticky .participants bar stays at the top of the viewport over the whole flow, its names
// placed over the lifelines of the part in view, shown (class "shown") once that part's own participant
// boxes have scrolled out of sight. Plain JavaScript, no network beyond the Mermaid script.
// State for tests and readers: body[data-diagrams] = "done" | "no-mermaid" | "error: ..." once every part is
// drawn or drawing failed; section.flow[data-drawn] = parts drawn so far.
(function () {
  "use strict";
  var flow = document.querySelector("section.flow");
  if (!flow) { return; }
  var parts = Array.prototype.slice.call(flow.querySelectorAll("pre.mermaid"));
  var bar = flow.querySelector(".participants");
  var names = bar ? Array.prototype.slice.call(bar.querySelectorAll("[data-actor]")) : [];
  var drawn = 0;
  var queue = [];
  var busy = false;
  // Seconds to wait for the Mermaid script before saying it has not loaded (a network that drops packets
  // neither loads nor fails); the message goes away if it loads later.
  var LOAD_WAIT = 15;

  function missing(why) {
    var box = document.getElementById("mermaid-missing");
    if (box) { box.hidden = false; }
    document.body.setAttribute("data-diagrams", "no-mermaid");
    if (why) { document.body.setAttribute("data-mermaid-error", why); }
  }

  function link(svg) {
    svg.querySelectorAll(".sequenceNumber").forEach(function (number) {
      var target = "frame-" + number.textContent.trim();
      if (!document.getElementById(target)) { return; }
      number.setAttribute("role", "link");
      number.setAttribute("data-frame", target);
      number.addEventListener("click", function () { location.hash = target; });
    });
  }

  // The top actor boxes of a drawn part, left to right (Mermaid 11: rect.actor-top; older: the first rects).
  function actors(svg) {
    var boxes = Array.prototype.slice.call(svg.querySelectorAll("rect.actor-top"));
    if (!boxes.length) { boxes = Array.prototype.slice.call(svg.querySelectorAll("rect.actor")).slice(0, names.length); }
    return boxes.map(function (r) { return r.getBoundingClientRect(); })
      .sort(function (a, b) { return a.left - b.left; });
  }

  // Place the bar's names over the lifelines of the part under the bar.
  function place() {
    if (!bar) { return; }
    var barBox = bar.getBoundingClientRect();
    var svg = null;
    flow.querySelectorAll("pre.mermaid svg").forEach(function (s) {
      var r = s.getBoundingClientRect();
      if (!svg && r.bottom > barBox.bottom) { svg = s; }
    });
    if (!svg) { return; }
    var boxes = actors(svg);
    if (boxes.length !== names.length) { return; }
    bar.classList.add("placed");
    // Shown once that part's own participant boxes have scrolled up under it (not twice over them).
    bar.classList.toggle("shown", boxes[0].top < barBox.bottom);
    names.forEach(function (name, i) {
      name.style.left = (boxes[i].left + boxes[i].width / 2 - barBox.left) + "px";
    });
  }

  var pending = false;
  function placeSoon() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; place(); });
  }

  function next() {
    if (busy || !queue.length) { return; }
    busy = true;
    var pre = queue.shift();
    window.mermaid.run({ nodes: [pre] }).then(function () {
      var svg = pre.querySelector("svg");
      if (svg) { link(svg); }
      pre.setAttribute("data-drawn", "yes");
      drawn += 1;
      flow.setAttribute("data-drawn", String(drawn));
      busy = false;
      placeSoon();
      if (drawn === parts.length) { document.body.setAttribute("data-diagrams", "done"); }
      next();
    }, function (err) {
      busy = false;
      document.body.setAttribute("data-diagrams", "error: " + err);
    });
  }

  function want(pre) {
    if (pre.hasAttribute("data-queued")) { return; }
    pre.setAttribute("data-queued", "yes");
    queue.push(pre);
    next();
  }

  function start() {
    var box = document.getElementById("mermaid-missing");
    if (box) { box.hidden = true; }
    document.body.removeAttribute("data-diagrams");
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict",
      sequence: { showSequenceNumbers: true, mirrorActors: true } });
    if (!parts.length) { document.body.setAttribute("data-diagrams", "done"); return; }
    if (!("IntersectionObserver" in window)) { parts.forEach(want); return; }
    // Parts within a screen or two of the viewport are drawn; the others wait until scrolled to.
    var seen = new IntersectionObserver(function (changes) {
      changes.forEach(function (change) {
        if (change.isIntersecting) { seen.unobserve(change.target); want(change.target); }
      });
    }, { rootMargin: "1500px 0px 1500px 0px" });
    parts.forEach(function (pre) { seen.observe(pre); });
  }

  window.addEventListener("scroll", placeSoon, { passive: true });
  window.addEventListener("resize", placeSoon);
  var script = document.createElement("script");
  var late = window.setTimeout(function () { missing("not loaded after " + LOAD_WAIT + " s"); }, LOAD_WAIT * 1000);
  script.src = flow.getAttribute("data-mermaid-js");
  script.onload = function () {
    window.clearTimeout(late);
    if (typeof window.mermaid === "undefined") { missing("the script defines no mermaid"); return; }
    start();
  };
  script.onerror = function () { window.clearTimeout(late); missing("the script could not be loaded"); };
  document.head.appendChild(script);
})();
