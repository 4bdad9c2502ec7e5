// Progressive enhancement only: every feature here has a plain-HTML fallback.
(function () {
  "use strict";
  var input = document.getElementById("q");

  // "/" focuses the search box from anywhere, unless the user is typing in a field.
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey &&
        tag !== "input" && tag !== "textarea" && tag !== "select" && !event.target.isContentEditable) {
      event.preventDefault();
      input.focus();
      input.select();
    }
  });

  // Sorting applies as soon as it is chosen (the form's button does it without JavaScript).
  document.querySelectorAll("[data-autosubmit]").forEach(function (control) {
    control.addEventListener("change", function () { control.form.submit(); });
  });

  // On a phone the filters and an article's table of contents start folded, so the results and
  // the text come first.
  if (window.matchMedia("(max-width: 760px)").matches) {
    document.querySelectorAll(".filters-panel, .toc-panel").forEach(function (panel) { panel.open = false; });
  }

  // The header's real height (it wraps on narrow screens), so a section scrolled to lands below it
  // and the article bar; 0 where the header scrolls away (a phone).
  var header = document.querySelector(".site-header");
  function measureHeader() {
    var sticky = header && getComputedStyle(header).position === "sticky";
    document.documentElement.style.setProperty("--header-h", (sticky ? header.offsetHeight : 0) + "px");
  }
  measureHeader();
  window.addEventListener("resize", measureHeader);

  // The article bar names the article once its headline has scrolled out of view.
  var bar = document.getElementById("article-bar");
  var headline = document.getElementById("article-title");
  if (bar && headline && window.IntersectionObserver) {
    new IntersectionObserver(function (entries) {
      bar.classList.toggle("headline-in-view", entries[entries.length - 1].isIntersecting);
    }, { rootMargin: "-" + (header && getComputedStyle(header).position === "sticky" ? header.offsetHeight + bar.offsetHeight : bar.offsetHeight) + "px 0px 0px 0px" }).observe(headline);
  }

  // Arriving at an article's section: move keyboard focus there too, not just the scroll.
  if (location.hash && /^#s\d+$/.test(location.hash)) {
    var target = document.getElementById(location.hash.slice(1));
    if (target) target.focus({ preventScroll: true });
  }

  // Search-as-you-type: a listbox under the box, filled from /api/suggest.
  var list = document.getElementById("suggestions");
  if (!input || !list || !window.fetch) return;
  var timer = null, active = -1, items = [], latest = 0;

  function close() {
    list.hidden = true;
    list.textContent = "";
    items = [];
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function choose(item) {
    if (item.href) { location.href = item.href; return; }
    input.value = item.query;
    close();
    input.form.submit();
  }

  function highlight(index) {
    items.forEach(function (item, i) { item.node.setAttribute("aria-selected", i === index ? "true" : "false"); });
    active = index;
    if (index >= 0) input.setAttribute("aria-activedescendant", items[index].node.id);
    else input.removeAttribute("aria-activedescendant");
  }

  function render(data) {
    close();
    var entries = data.queries.slice(0, 5).map(function (query) { return { query: query, kind: "検索" }; })
      .concat(data.titles.slice(0, 5).map(function (title) {
        return { query: title.title, kind: "記事", href: "/articles/" + title.id.split("/").map(encodeURIComponent).join("/") };
      }));
    entries.forEach(function (entry, i) {
      var node = document.createElement("li");
      node.id = "suggestion-" + i;
      node.setAttribute("role", "option");
      node.setAttribute("aria-selected", "false");
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = entry.kind;
      node.appendChild(kind);
      node.appendChild(document.createTextNode(entry.query));
      node.addEventListener("mousedown", function (event) { event.preventDefault(); choose(entry); });
      entry.node = node;
      list.appendChild(node);
      items.push(entry);
    });
    if (items.length) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    var text = input.value.trim();
    if (!text) { close(); return; }
    timer = setTimeout(function () {
      var request = ++latest;
      fetch("/api/suggest?q=" + encodeURIComponent(text))
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data && request === latest && document.activeElement === input) render(data); })
        .catch(function () { /* suggestions are optional */ });
    }, 150);
  });

  input.addEventListener("keydown", function (event) {
    // Keys that confirm or move within an IME conversion (Enter picks the kanji) are the IME's,
    // not ours: 229 is what browsers report for them while composing.
    if (event.isComposing || event.keyCode === 229) return;
    if (!items.length) return;
    if (event.key === "ArrowDown") { event.preventDefault(); highlight((active + 1) % items.length); }
    else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active <= 0 ? items.length - 1 : active - 1); }
    else if (event.key === "Escape") { close(); }
    else if (event.key === "Enter" && active >= 0) { event.preventDefault(); choose(items[active]); }
  });
  input.addEventListener("blur", close);
})();
