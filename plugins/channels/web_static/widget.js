/* The assistant's chat widget. Add it to any page:
 *
 *   <script src="https://assistant.example.com/widget.js"></script>
 *   <script>AssistantWidget.init({server: "https://assistant.example.com"});</script>
 *
 * Options: server (default: where this script came from), target (a CSS selector: the chat is drawn
 * inside it; without one a "Chat" button opens it in a corner), title, greeting.
 *
 * Every text is put on the page with textContent, never as HTML: what users and the model write is shown
 * as text, whatever it contains.
 */
(function () {
  "use strict";

  var STORAGE_KEY = "assistant-widget-sender";
  var SCRIPT_ORIGIN = document.currentScript ? new URL(document.currentScript.src, location.href).origin : location.origin;

  function newSenderId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function senderId() {
    var id = null;
    try { id = localStorage.getItem(STORAGE_KEY); } catch (e) { /* storage blocked: a new conversation per page */ }
    if (!id || !/^[A-Za-z0-9_-]{16,128}$/.test(id)) {
      id = newSenderId();
      try { localStorage.setItem(STORAGE_KEY, id); } catch (e) { /* see above */ }
    }
    return id;
  }

  // Material Design "thumb_up" (Apache-2.0); thumbs down is the same shape turned over.
  var THUMB = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 " +
    "7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";

  function thumb(down) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "16");
    svg.setAttribute("height", "16");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (down) svg.setAttribute("transform", "rotate(180)");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", THUMB);
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /* Reads a text/event-stream response body: calls onEvent(name, data) for each event. */
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        var name = "message", data = "";
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event: ") === 0) name = line.slice(7);
          else if (line.indexOf("data: ") === 0) data += line.slice(6);
        });
        onEvent(name, data ? JSON.parse(data) : {});
      }
    }
  }

  async function errorText(response) {
    try {
      var body = await response.json();
      var detail = body.message || body.detail;
      return typeof detail === "string" ? detail : "the assistant answered " + response.status;
    } catch (e) {
      return "the assistant answered " + response.status;
    }
  }

  function Widget(options) {
    this.server = (options.server || SCRIPT_ORIGIN).replace(/\/+$/, "");
    this.title = options.title || "Assistant";
    this.greeting = options.greeting || "";
    this.sender = senderId();
    this.busy = false;
    this.build(options.target ? document.querySelector(options.target) : null);
    this.loadHistory();
  }

  Widget.prototype.build = function (target) {
    var root = el("div", "aw-root");
    var panel = el("section", "aw-panel");
    panel.setAttribute("aria-label", this.title);
    var header = el("header", "aw-header");
    header.appendChild(el("h2", null, this.title));
    this.log = el("ol", "aw-log");
    this.log.setAttribute("aria-live", "polite");
    this.log.setAttribute("aria-label", "Conversation");
    this.typing = el("div", "aw-typing", "The assistant is typing…");
    this.typing.hidden = true;
    this.typing.setAttribute("role", "status");
    var form = el("form", "aw-form");
    var label = el("label", "aw-sr", "Your message");
    var inputId = "aw-input-" + Math.random().toString(36).slice(2);
    label.htmlFor = inputId;
    this.input = el("input");
    this.input.id = inputId;
    this.input.type = "text";
    this.input.autocomplete = "off";
    this.input.maxLength = 4096;
    this.input.placeholder = "Type a message…";
    this.send = el("button", null, "Send");
    this.send.type = "submit";
    form.append(label, this.input, this.send);
    panel.append(header, this.log, this.typing, form);
    root.appendChild(panel);
    var self = this;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.submit();
    });
    if (target) {
      target.appendChild(root);
    } else {
      root.classList.add("aw-floating");
      panel.hidden = true;
      var launcher = el("button", "aw-launcher", "Chat");
      launcher.type = "button";
      launcher.setAttribute("aria-expanded", "false");
      var show = function (open) {
        panel.hidden = !open;
        launcher.setAttribute("aria-expanded", String(open));
        if (open) self.input.focus(); else launcher.focus();
      };
      launcher.addEventListener("click", function () { show(panel.hidden); });
      var close = el("button", "aw-close", "×");
      close.type = "button";
      close.setAttribute("aria-label", "Close chat");
      close.addEventListener("click", function () { show(false); });
      header.appendChild(close);
      panel.addEventListener("keydown", function (event) { if (event.key === "Escape") show(false); });
      root.appendChild(launcher);
      document.body.appendChild(root);
    }
    if (!document.querySelector('link[data-assistant-widget]')) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = this.server + "/widget.css";
      css.setAttribute("data-assistant-widget", "");
      document.head.appendChild(css);
    }
  };

  Widget.prototype.bubble = function (role, text) {
    var item = el("li", "aw-msg " + (role === "user" ? "aw-user" : role === "bot" ? "aw-bot" : "aw-error"));
    var body = el("div", "aw-text", text);
    item.appendChild(body);
    this.log.appendChild(item);
    this.log.scrollTop = this.log.scrollHeight;
    return item;
  };

  Widget.prototype.loadHistory = async function () {
    try {
      var response = await fetch(this.server + "/webhooks/web/history?sender=" + encodeURIComponent(this.sender));
      if (!response.ok) throw new Error(await errorText(response));
      var messages = await response.json();
      if (!messages.length && this.greeting) this.bubble("greeting", this.greeting).className = "aw-msg aw-bot";
      for (var i = 0; i < messages.length; i++) {
        var m = messages[i];
        var item = this.bubble(m.role, m.text);
        if (m.role === "bot") {
          this.finish(item, { message_id: m.id, route: m.route, citations: m.citations, rich: m.rich }, m.rating);
        }
      }
    } catch (e) {
      this.bubble("error", "Could not load the conversation: " + e.message);
    }
  };

  /* Send what the visitor typed, or a button's payload (shown as the button's title, as Rasa's widgets do). */
  Widget.prototype.submit = async function (payload, title) {
    var text = payload || this.input.value.trim();
    if (!text || this.busy) return;
    this.busy = true;
    this.send.disabled = true;
    if (!payload) this.input.value = "";
    this.bubble("user", title || text);
    this.typing.hidden = false;
    var reply = null;
    var self = this;
    try {
      var response = await fetch(this.server + "/webhooks/web/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: this.sender, message: text })
      });
      if (!response.ok) throw new Error(await errorText(response));
      await readEvents(response, function (name, data) {
        if (name === "token") {
          if (!reply) { self.typing.hidden = true; reply = self.bubble("bot", ""); }
          reply.firstChild.textContent += data.text;
          self.log.scrollTop = self.log.scrollHeight;
        } else if (name === "message") {
          self.typing.hidden = true;
          reply = reply || self.bubble("bot", "");
          reply.firstChild.textContent = data.text;
          self.finish(reply, data, null);
        }
      });
      if (!reply) throw new Error("the reply was cut off");
    } catch (e) {
      this.bubble("error", "Sorry, the message could not be answered (" + e.message + "). Please try again.");
    } finally {
      this.typing.hidden = true;
      this.busy = false;
      this.send.disabled = false;
      this.input.focus();
    }
  };

  /* The sources of a reply from the knowledge base, as numbered links (a URL, or the cited passage). */
  Widget.prototype.sources = function (item, citations) {
    var list = el("ol", "aw-sources");
    list.setAttribute("aria-label", "Sources");
    for (var i = 0; i < citations.length; i++) {
      var c = citations[i];
      var entry = el("li");
      entry.value = c.n;
      var link = el("a", "aw-source", c.title);
      link.href = /^https?:\/\//.test(c.source) ? c.source : this.server + "/kb/passages/" + c.chunk_id;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      entry.appendChild(link);
      list.appendChild(entry);
    }
    item.appendChild(list);
  };

  /* A templated response's image and buttons; a button sends its payload. */
  Widget.prototype.rich = function (item, rich) {
    var self = this;
    if (rich.image && /^(https?:\/\/|data:image\/)/.test(rich.image)) {
      var image = el("img", "aw-image");
      image.src = rich.image;
      image.alt = "";
      item.appendChild(image);
    }
    if (rich.buttons && rich.buttons.length) {
      var choices = el("div", "aw-choices");
      rich.buttons.forEach(function (b) {
        var button = el("button", "aw-choice", b.title || b.payload);
        button.type = "button";
        button.addEventListener("click", function () { self.submit(b.payload || b.title, b.title); });
        choices.appendChild(button);
      });
      item.appendChild(choices);
    }
  };

  /* A finished bot reply: remember its id, show its image, buttons and sources, and offer feedback when the
     LLM wrote it. */
  Widget.prototype.finish = function (item, data, rating) {
    item.setAttribute("data-message-id", String(data.message_id));
    item.setAttribute("data-route", data.route || "");
    if (data.rich) this.rich(item, data.rich);
    if (data.citations && data.citations.length) this.sources(item, data.citations);
    if (data.route !== "llm") return;
    var self = this;
    var bar = el("div", "aw-feedback");
    var up = el("button", "aw-up");
    var down = el("button", "aw-down");
    up.appendChild(thumb(false));
    down.appendChild(thumb(true));
    var suggest = el("button", "aw-suggest-open", "Suggest a better answer");
    up.setAttribute("aria-label", "Good answer");
    down.setAttribute("aria-label", "Bad answer");
    [up, down, suggest].forEach(function (b) { b.type = "button"; });
    [[up, "up"], [down, "down"]].forEach(function (pair) {
      pair[0].setAttribute("aria-pressed", String(rating === pair[1]));
      pair[0].addEventListener("click", async function () {
        if (await self.feedback(data.message_id, { rating: pair[1] })) {
          up.setAttribute("aria-pressed", String(pair[1] === "up"));
          down.setAttribute("aria-pressed", String(pair[1] === "down"));
        }
      });
    });
    suggest.addEventListener("click", function () {
      suggest.hidden = true;
      var form = el("form", "aw-suggest");
      var box = el("textarea");
      box.setAttribute("aria-label", "A better answer");
      box.maxLength = 8192;
      var save = el("button", null, "Send suggestion");
      save.type = "submit";
      form.append(box, save);
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        var correction = box.value.trim();
        if (!correction) return;
        if (await self.feedback(data.message_id, { correction: correction })) {
          form.replaceWith(el("div", "aw-thanks", "Thanks, your suggestion was saved."));
        }
      });
      bar.after(form);
      box.focus();
    });
    bar.append(up, down, suggest);
    item.appendChild(bar);
  };

  Widget.prototype.feedback = async function (messageId, body) {
    try {
      var response = await fetch(this.server + "/webhooks/web/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ sender: this.sender, message_id: messageId }, body))
      });
      if (!response.ok) throw new Error(await errorText(response));
      return true;
    } catch (e) {
      this.bubble("error", "Your feedback could not be saved (" + e.message + ").");
      return false;
    }
  };

  window.AssistantWidget = {
    init: function (options) { return new Widget(options || {}); }
  };
})();
