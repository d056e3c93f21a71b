/* Chat page for the RAG service: streams /v1/chat/completions (SSE), then shows the verified
   answer with clickable [n] citations. Plain JS, no dependencies, works offline. */
(function () {
  "use strict";

  var API_URL = "v1/chat/completions";      // relative to the page, which is served at /
  var MODELS_URL = "v1/models";
  var DOCS_URL = "v1/documents";
  var MODEL_PREFIX = "rag:";                 // a collection's model id is rag:<name>
  var DEFAULT_MODEL = "rag";                 // any other id answers from the server's configured collection
  var KEY_STORAGE = "rag.apiKey";
  var VERIFIED_PREFIX = "\n\nVerified answer:";

  var el = {
    messages: document.getElementById("messages"),
    emptyHint: document.getElementById("empty-hint"),
    form: document.getElementById("ask-form"),
    question: document.getElementById("question"),
    send: document.getElementById("send"),
    stop: document.getElementById("stop"),
    status: document.getElementById("status"),
    authBox: document.getElementById("auth-box"),
    authHelp: document.getElementById("auth-help"),
    apiKey: document.getElementById("api-key"),
    changeKey: document.getElementById("change-key"),
    newChat: document.getElementById("new-chat"),
    collection: document.getElementById("collection"),
    panel: document.getElementById("source-panel"),
    panelTitle: document.getElementById("source-title"),
    panelN: document.getElementById("source-n"),
    panelAuthors: document.getElementById("source-authors"),
    panelDate: document.getElementById("source-date"),
    panelPublisher: document.getElementById("source-publisher"),
    panelPath: document.getElementById("source-path"),
    panelPassage: document.getElementById("source-passage"),
    panelClose: document.getElementById("source-close")
  };

  var history = [];        // [{role, content}] of completed turns, sent with every question
  var busy = false;
  var controller = null;   // AbortController of the request in flight
  var pending = null;      // {question, turn} waiting for an API key after a 401
  var cardCache = {};      // model id -> Promise of {doc_id: card} from GET /v1/documents
  var shownSource = 0;     // bumped on every showSource, so a late card fetch never fills a newer card

  // ---------------------------------------------------------------- storage

  function getKey() {
    try { return window.localStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
  }
  function setKey(key) {
    try {
      if (key) { window.localStorage.setItem(KEY_STORAGE, key); } else { window.localStorage.removeItem(KEY_STORAGE); }
    } catch (e) { /* private mode: the key then lives for this page only */ }
    memoryKey = key;
    el.changeKey.hidden = !key;
  }
  var memoryKey = getKey();
  el.changeKey.hidden = !memoryKey;

  // ---------------------------------------------------------------- DOM helpers

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function scrollToEnd() {
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  function setStatus(text) {
    el.status.textContent = text || "";
  }

  function setBusy(on) {
    busy = on;
    el.send.disabled = on;
    el.stop.hidden = !on;
    el.messages.setAttribute("aria-busy", on ? "true" : "false");
    el.form.classList.toggle("busy", on);
  }

  // One question/answer pair in the conversation.
  function addTurn(question) {
    if (el.emptyHint) { el.emptyHint.remove(); el.emptyHint = null; }
    var wrap = make("section", "turn");
    var q = make("div", "message user");
    q.appendChild(make("span", "visually-hidden", "You asked: "));
    q.appendChild(make("p", "question-text", question));
    var a = make("article", "message assistant answer pending");
    a.setAttribute("aria-label", "Answer");
    var body = make("div", "answer-body");
    var thinking = make("p", "thinking", "Thinking");
    thinking.appendChild(make("span", "dots", "…"));
    body.appendChild(thinking);
    a.appendChild(body);
    wrap.appendChild(q);
    wrap.appendChild(a);
    el.messages.appendChild(wrap);
    scrollToEnd();
    // The collection is fixed per turn: its sources' cards are looked up in the collection that answered.
    return { wrap: wrap, answer: a, body: body, streamed: "", sources: [], model: el.collection.value || DEFAULT_MODEL };
  }

  function resetTurn(turn) {
    turn.streamed = "";
    turn.sources = [];
    turn.answer.className = "message assistant answer pending";
    turn.body.textContent = "";
    var thinking = make("p", "thinking", "Thinking");
    thinking.appendChild(make("span", "dots", "…"));
    turn.body.appendChild(thinking);
    var extra = turn.answer.querySelectorAll(".sources, .answer-note, .error");
    for (var i = 0; i < extra.length; i++) { extra[i].remove(); }
  }

  // Streamed tokens are shown as plain text while they arrive.
  function showStreamed(turn) {
    turn.answer.classList.remove("pending");
    turn.answer.classList.add("streaming");
    var p = turn.body.querySelector(".draft");
    if (!p) {
      turn.body.textContent = "";
      p = make("p", "draft");
      turn.body.appendChild(p);
    }
    // The service may append "\n\nVerified answer: ..." when verification changed the draft:
    // from then on show only the verified text (the final chunk replaces it anyway).
    var cut = turn.streamed.indexOf(VERIFIED_PREFIX);
    p.textContent = cut >= 0 ? turn.streamed.slice(cut + VERIFIED_PREFIX.length).trim() : turn.streamed;
    scrollToEnd();
  }

  // Split text on citation markers ([1], [2, 3], [1][2]) into text and .cite buttons.
  function renderWithCitations(container, text, turn) {
    var re = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
    var last = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) { container.appendChild(document.createTextNode(text.slice(last, m.index))); }
      var numbers = m[1].split(",");
      for (var i = 0; i < numbers.length; i++) {
        container.appendChild(citeButton(parseInt(numbers[i], 10), turn));
      }
      last = re.lastIndex;
    }
    if (last < text.length) { container.appendChild(document.createTextNode(text.slice(last))); }
  }

  function findSource(turn, n) {
    for (var i = 0; i < turn.sources.length; i++) {
      if (Number(turn.sources[i].n) === n) { return turn.sources[i]; }
    }
    return null;
  }

  function citeButton(n, turn) {
    var b = make("button", "cite", "[" + n + "]");
    b.type = "button";
    b.setAttribute("data-n", String(n));
    var src = findSource(turn, n);
    b.title = src ? "Source " + n + ": " + (src.title || src.doc_id || "") : "Source " + n;
    b.setAttribute("aria-label", b.title);
    b.addEventListener("click", function () { showSource(turn, n, b); });
    return b;
  }

  function paragraphs(container, text, turn) {
    var parts = String(text).split(/\n{2,}/);
    for (var i = 0; i < parts.length; i++) {
      if (!parts[i].trim()) { continue; }
      var p = make("p", "answer-text");
      renderWithCitations(p, parts[i].trim(), turn);
      container.appendChild(p);
    }
  }

  function renderFinal(turn, answerText, abstained, sources, confidence) {
    turn.sources = Array.isArray(sources) ? sources : [];
    turn.body.textContent = "";
    turn.answer.classList.remove("pending", "streaming");
    turn.answer.classList.add("done");
    if (abstained) { turn.answer.classList.add("abstained"); }
    paragraphs(turn.body, answerText, turn);
    if (typeof confidence === "number") {
      // The calibrated probability that this answer (or this abstention) is right.
      turn.body.appendChild(make("p", "answer-confidence", "Confidence " + Math.round(confidence * 100) + "%"));
    }
    if (turn.sources.length) {
      var box = make("div", "sources");
      box.appendChild(make("h3", "sources-title", "Sources"));
      var list = make("ol", "source-list");
      turn.sources.slice().sort(function (x, y) { return Number(x.n) - Number(y.n); }).forEach(function (src) {
        var li = make("li", "source-item");
        var b = make("button", "source-link");
        b.type = "button";
        b.setAttribute("data-n", String(src.n));
        b.appendChild(make("span", "source-num", "[" + src.n + "]"));
        b.appendChild(document.createTextNode(" " + (src.title || src.doc_id || "Untitled")));
        b.addEventListener("click", function () { showSource(turn, Number(src.n), b); });
        li.appendChild(b);
        li.appendChild(make("span", "source-where", fileName(src.source || src.doc_id)));
        list.appendChild(li);
      });
      box.appendChild(list);
      turn.answer.appendChild(box);
      cardsFor(turn.model);   // fetch the document cards now, so a click shows them at once
    }
    scrollToEnd();
  }

  function renderError(turn, message) {
    turn.answer.classList.remove("pending", "streaming");
    turn.answer.classList.add("failed");
    var thinking = turn.body.querySelector(".thinking");
    if (thinking) { thinking.remove(); }
    var box = make("p", "error", message);
    box.setAttribute("role", "alert");
    turn.answer.appendChild(box);
    scrollToEnd();
  }

  // ---------------------------------------------------------------- source panel

  // The last path component: the card names the file, never a folder of the server.
  function fileName(path) {
    var parts = String(path || "").split(/[\\/]/);
    return parts[parts.length - 1] || "";
  }

  function collectionOf(model) {
    return model.indexOf(MODEL_PREFIX) === 0 ? model.slice(MODEL_PREFIX.length) : "";
  }

  // The document cards of a collection (title, authors, date, publisher), fetched once; {} when unavailable.
  function cardsFor(model) {
    if (!cardCache[model]) {
      var name = collectionOf(model);
      var url = DOCS_URL + (name ? "?collection=" + encodeURIComponent(name) : "");
      cardCache[model] = fetch(url, { headers: headers() }).then(function (resp) {
        if (!resp.ok) { throw new Error("documents: " + resp.status); }
        return resp.json();
      }).then(function (data) {
        var byId = {};
        (data.documents || []).forEach(function (d) { byId[d.doc_id] = d; });
        return byId;
      }).catch(function () {
        delete cardCache[model];   // try again on the next click (after a key is given, say)
        return {};
      });
    }
    return cardCache[model];
  }

  function fillCard(card) {
    var authors = card && Array.isArray(card.authors) ? card.authors : [];
    el.panelAuthors.textContent = authors.length ? authors.join("; ") : "—";
    // An inferred date is the latest one the text states, not a publication date: "as of".
    el.panelDate.textContent = card && card.date ? (card.date_inferred ? "as of " + card.date : card.date) : "—";
    el.panelPublisher.textContent = (card && card.publisher) || "—";
    if (card && card.title) { el.panelTitle.textContent = card.title; }
  }

  // The passage text with the quoted span in a <mark>; text nodes only, so document text is never parsed as HTML.
  function renderPassage(src) {
    el.panelPassage.textContent = "";
    var text = String(src.passage || "");
    var quote = String(src.quote || "");
    var a = Number(src.start) - Number(src.passage_start);
    var b = Number(src.end) - Number(src.passage_start);
    var squash = function (t) { return t.replace(/\s+/g, " ").trim(); };
    var mark = make("mark", "source-quote");
    mark.id = "source-quote";
    if (text && a >= 0 && b > a && b <= text.length && squash(text.slice(a, b)) === squash(quote)) {
      el.panelPassage.appendChild(document.createTextNode(text.slice(0, a)));
      mark.textContent = text.slice(a, b);
      el.panelPassage.appendChild(mark);
      el.panelPassage.appendChild(document.createTextNode(text.slice(b)));
    } else {                                  // no passage sent (older server): the quote alone
      mark.textContent = quote;
      el.panelPassage.appendChild(mark);
    }
    return mark;
  }

  function showSource(turn, n, button) {
    var src = findSource(turn, n);
    var active = document.querySelectorAll(".cite.active, .source-link.active");
    for (var i = 0; i < active.length; i++) { active[i].classList.remove("active"); }
    if (button) { button.classList.add("active"); }
    var shown = ++shownSource;
    var mark = null;
    el.panelN.textContent = "[" + n + "]";
    fillCard(null);
    if (!src) {
      el.panelTitle.textContent = "Source not available";
      el.panelPath.textContent = "—";
      el.panelPassage.textContent = "The service did not send this source.";
    } else {
      el.panelTitle.textContent = src.title || "Untitled";
      el.panelPath.textContent = fileName(src.source || src.doc_id) || "—";
      el.panelAuthors.textContent = el.panelDate.textContent = el.panelPublisher.textContent = "…";
      mark = renderPassage(src);
      cardsFor(turn.model).then(function (cards) {
        if (cards[src.doc_id]) { return cards; }
        delete cardCache[turn.model];          // a document added since the cards were fetched: fetch them again
        return cardsFor(turn.model);
      }).then(function (cards) {
        if (shown === shownSource) { fillCard(cards[src.doc_id] || null); }
      });
    }
    el.panel.hidden = false;
    el.panel.focus({ preventScroll: true });
    if (mark) { mark.scrollIntoView({ block: "nearest" }); }
    if (window.matchMedia && window.matchMedia("(max-width: 900px)").matches) {
      el.panel.scrollIntoView({ block: "nearest" });
    }
  }

  el.panelClose.addEventListener("click", function () { el.panel.hidden = true; });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && !el.panel.hidden) { el.panel.hidden = true; el.question.focus(); }
  });

  // ---------------------------------------------------------------- errors

  function httpError(status, bodyText) {
    var msg = "";
    try {
      var data = JSON.parse(bodyText);
      if (data && data.error) {
        msg = typeof data.error === "string" ? data.error : (data.error.message || JSON.stringify(data.error));
      } else if (data && data.detail !== undefined) {
        if (typeof data.detail === "string") { msg = data.detail; }
        else if (Array.isArray(data.detail)) {
          msg = data.detail.map(function (d) { return d && d.msg ? d.msg : JSON.stringify(d); }).join("; ");
        } else { msg = JSON.stringify(data.detail); }
      } else if (data && data.message) {
        msg = data.message;
      }
    } catch (e) {
      var plain = bodyText || "";
      if (/^\s*</.test(plain) && window.DOMParser) {   // an HTML error page (a proxy, say): its visible text
        plain = new DOMParser().parseFromString(plain, "text/html").body.textContent || "";
      }
      msg = plain.replace(/\s+/g, " ").trim().slice(0, 300);
    }
    var prefix = status >= 500 ? "The service failed (" + status + ")" : "The request was refused (" + status + ")";
    return prefix + (msg ? ": " + msg : ".");
  }

  // ---------------------------------------------------------------- auth

  function askForKey(rejected) {
    el.authHelp.textContent = rejected
      ? "That API key was not accepted. Enter a valid key (kept in this browser only)."
      : "This service needs an API key. It is kept in this browser only (localStorage).";
    el.authBox.hidden = false;
    el.apiKey.value = "";
    el.apiKey.focus();
    setStatus("An API key is needed.");
  }

  el.authBox.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var key = el.apiKey.value.trim();
    if (!key) { el.apiKey.focus(); return; }
    setKey(key);
    el.apiKey.value = "";
    el.authBox.hidden = true;
    loadModels();                        // the list may have been refused without a key
    if (pending && !busy) {
      var p = pending;
      pending = null;
      resetTurn(p.turn);
      run(p.question, p.turn);
    } else {
      setStatus("API key saved.");
      el.question.focus();
    }
  });

  el.changeKey.addEventListener("click", function () {
    if (el.authBox.hidden) {
      el.authHelp.textContent = "Replace the stored API key (leave empty and press Use key to keep it).";
      el.authBox.hidden = false;
      el.apiKey.focus();
    } else {
      el.authBox.hidden = true;
    }
  });

  // ---------------------------------------------------------------- streaming

  // Feed decoded text; calls onData(payload) for each complete SSE event's data.
  function sseParser(onData) {
    var buffer = "";
    var dataLines = [];
    function dispatch() {
      if (dataLines.length) { onData(dataLines.join("\n")); dataLines = []; }
    }
    function line(l) {
      if (l === "") { dispatch(); return; }
      if (l.charAt(0) === ":") { return; }               // comment / keep-alive
      if (l.indexOf("data:") === 0) {
        var v = l.slice(5);
        if (v.charAt(0) === " ") { v = v.slice(1); }
        dataLines.push(v);
      }
    }
    return {
      push: function (text) {
        buffer += text;
        var idx;
        while ((idx = buffer.search(/\r\n|\r|\n/)) >= 0) {
          var sep = buffer.charAt(idx) === "\r" && buffer.charAt(idx + 1) === "\n" ? 2 : 1;
          line(buffer.slice(0, idx));
          buffer = buffer.slice(idx + sep);
        }
      },
      end: function () {
        if (buffer) { line(buffer); buffer = ""; }
        dispatch();
      }
    };
  }

  function applyChunk(turn, chunk, state) {
    if (chunk && chunk.error) {
      state.error = typeof chunk.error === "string" ? chunk.error : (chunk.error.message || "The service reported an error.");
      return;
    }
    var choice = chunk && chunk.choices && chunk.choices[0];
    var delta = choice && (choice.delta || choice.message);
    if (delta && typeof delta.content === "string" && delta.content) {
      turn.streamed += delta.content;
      showStreamed(turn);
      if (!state.firstToken) { state.firstToken = true; setStatus("Answering…"); }
    }
    if (chunk && typeof chunk.answer === "string") {
      state.final = { answer: chunk.answer, abstained: !!chunk.abstained, sources: chunk.sources || [],
                      confidence: typeof chunk.confidence === "number" ? chunk.confidence : null };
    }
  }

  function headers() {
    var h = { "Content-Type": "application/json", "Accept": "text/event-stream" };
    if (memoryKey) { h["Authorization"] = "Bearer " + memoryKey; }
    return h;
  }

  function run(question, turn) {
    setBusy(true);
    setStatus("Thinking…");
    controller = window.AbortController ? new AbortController() : null;
    var messages = history.concat([{ role: "user", content: question }]);
    var sentKey = memoryKey;
    var state = { firstToken: false, final: null, error: null, done: false };

    return fetch(API_URL, {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ model: turn.model, stream: true, messages: messages }),
      signal: controller ? controller.signal : undefined
    }).then(function (resp) {
      if (resp.status === 401) {
        return resp.text().then(function () {
          if (sentKey) { setKey(""); }
          pending = { question: question, turn: turn };
          var thinking = turn.body.querySelector(".thinking");
          if (thinking) { thinking.textContent = "Waiting for an API key…"; }
          askForKey(!!sentKey);
          return "auth";
        });
      }
      if (!resp.ok) {
        return resp.text().then(function (t) { throw new Error(httpError(resp.status, t)); });
      }
      var type = resp.headers.get("content-type") || "";
      if (type.indexOf("text/event-stream") < 0 || !resp.body || !resp.body.getReader) {
        // Not streamed (proxy or server choice): a plain chat.completion object.
        return resp.text().then(function (t) {
          if (type.indexOf("text/event-stream") >= 0) {
            var p = sseParser(function (d) { if (d.trim() !== "[DONE]") { applyChunk(turn, JSON.parse(d), state); } });
            p.push(t); p.end();
          } else {
            applyChunk(turn, JSON.parse(t), state);
          }
          return "ok";
        });
      }
      var reader = resp.body.getReader();
      var decoder = new TextDecoder("utf-8");
      var parser = sseParser(function (data) {
        if (state.done) { return; }
        if (data.trim() === "[DONE]") { state.done = true; return; }
        var chunk;
        try { chunk = JSON.parse(data); } catch (e) { return; }
        applyChunk(turn, chunk, state);
      });
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) { parser.push(decoder.decode()); parser.end(); return "ok"; }
          parser.push(decoder.decode(r.value, { stream: true }));
          if (state.done) { reader.cancel().catch(function () {}); return "ok"; }
          return pump();
        });
      }
      return pump();
    }).then(function (outcome) {
      if (outcome === "auth") { return; }
      if (state.error) { throw new Error("The service failed while answering: " + state.error); }
      var text;
      if (state.final) {
        text = state.final.answer;
        renderFinal(turn, text, state.final.abstained, state.final.sources, state.final.confidence);
      } else if (turn.streamed) {
        // No verified final chunk: keep what streamed, minus any verification trailer.
        var cut = turn.streamed.indexOf(VERIFIED_PREFIX);
        text = (cut >= 0 ? turn.streamed.slice(cut + VERIFIED_PREFIX.length) : turn.streamed).trim();
        renderFinal(turn, text, false, []);
        turn.answer.appendChild(make("p", "answer-note", "The answer was not verified (the stream ended early)."));
      } else {
        throw new Error("The service returned no answer.");
      }
      history.push({ role: "user", content: question });
      history.push({ role: "assistant", content: text });
      setStatus("");
    }).catch(function (err) {
      if (err && err.name === "AbortError") {
        if (turn.streamed) { renderFinal(turn, turn.streamed, false, []); }
        renderError(turn, "Stopped.");
        setStatus("Stopped.");
        return;
      }
      var msg = err && err.message ? err.message : String(err);
      if (err instanceof TypeError) { msg = "Could not reach the service (" + msg + "). Is it running?"; }
      renderError(turn, msg);
      setStatus("Something went wrong.");
    }).then(function () {
      controller = null;
      setBusy(false);
      if (!pending) { el.question.focus(); }
    });
  }

  function ask() {
    var question = el.question.value.trim();
    if (!question || busy) { return; }
    if (pending) {                       // a new question replaces one still waiting for a key
      pending.turn.wrap.remove();
      pending = null;
    }
    el.question.value = "";
    var turn = addTurn(question);
    run(question, turn);
  }

  el.form.addEventListener("submit", function (ev) { ev.preventDefault(); ask(); });
  el.question.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); ask(); }
  });
  el.stop.addEventListener("click", function () { if (controller) { controller.abort(); } });
  el.newChat.addEventListener("click", function () {
    if (busy && controller) { controller.abort(); }
    history = [];
    pending = null;
    el.messages.textContent = "";
    el.panel.hidden = true;
    el.authBox.hidden = true;
    setStatus("New conversation.");
    el.question.focus();
  });

  // ---------------------------------------------------------------- collections

  // One option per collection from GET /v1/models (the server's configured collection first). Until it answers, or
  // if it is refused, the "rag" model stays selected: the server then answers from its configured collection.
  function loadModels() {
    return fetch(MODELS_URL, { headers: headers() }).then(function (resp) {
      if (!resp.ok) { throw new Error("models: " + resp.status); }
      return resp.json();
    }).then(function (data) {
      var ids = (data.data || []).map(function (m) { return String(m.id); }).filter(function (id) {
        return id.indexOf(MODEL_PREFIX) === 0;
      });
      if (!ids.length) { return; }
      var keep = el.collection.value;
      el.collection.textContent = "";
      ids.forEach(function (id) {
        var option = make("option", null, collectionOf(id));
        option.value = id;
        el.collection.appendChild(option);
      });
      el.collection.value = ids.indexOf(keep) >= 0 ? keep : ids[0];
      el.collection.disabled = ids.length < 2;   // shown, so one knows which collection answers
    }).catch(function () { /* keep the default model */ });
  }

  loadModels();
  el.question.focus();
})();
