// The chat page. Every piece of user or server text goes into the DOM through textContent:
// nothing received is ever parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_MESSAGES = 500; // kept per room
  const TYPING_SHOW_MS = 3000; // how long "X is typing" stays after the last notice
  const TYPING_SEND_MS = 1500; // at most one typing notice per room this often
  const ACTIVE_MS = 10 * 60 * 1000; // "recently active": seen in the last 10 minutes

  let socket = null;
  let me = null; // {name, ...}
  let current = null; // the room shown
  const rooms = new Map(); // room -> {messages: [], unread, active: Map(name -> ts), typing: Map(name -> timer)}
  const joined = new Set(); // rooms the current connection has joined (data-joined on their buttons)
  let lastTypingSent = 0;

  function room(name) {
    let r = rooms.get(name);
    if (!r) {
      r = { messages: [], unread: 0, active: new Map(), typing: new Map() };
      rooms.set(name, r);
    }
    return r;
  }

  function setState(state, detail) {
    const el = $("state");
    el.className = "state " + state;
    el.dataset.state = state;
    el.textContent = detail ? `${state} (${detail})` : state;
    const usable = state === "connected" && current !== null;
    $("text").disabled = !usable;
    $("send").disabled = !usable;
  }

  // ---- login ---------------------------------------------------------------------------

  async function login(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    const username = $("username").value.trim();
    const password = $("password").value;
    let response;
    try {
      response = await fetch("/api/login", {
        method: "POST",
        headers: { "content-type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify({ username, password }),
      });
    } catch (err) {
      $("login-error").textContent = "cannot reach the server";
      return;
    }
    if (response.status === 404) {
      // Standalone development mode: no accounts, the name is just shown.
      start({ name: username }, { name: username });
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("login-error").textContent = body.error || `login failed (${response.status})`;
      return;
    }
    $("password").value = "";
    start(body.user, { token: body.token });
  }

  async function logout() {
    try {
      await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
    } catch (err) {
      // Offline: the session ends at its expiry anyway.
    }
    stop();
  }

  // ---- connection ----------------------------------------------------------------------

  function start(user, auth) {
    me = user;
    $("me").textContent = user.name || "";
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    $("logout").hidden = false;
    setState("connecting");

    socket = io({ auth, transports: ["websocket", "polling"] });

    socket.on("connect", () => {
      setState("connected");
      // After a reconnect the server knows none of our rooms: join them again.
      for (const name of rooms.keys()) {
        socket.emit("join", { room: name }, (reply) => {
          if (reply && reply.error) {
            system(name, `could not re-join: ${reply.error}`);
            return;
          }
          joined.add(name);
          renderRooms();
        });
      }
    });
    socket.on("welcome", (data) => {
      $("instance").textContent = data && data.instance ? String(data.instance) : "";
    });
    socket.on("disconnect", (reason) => {
      joined.clear();
      renderRooms();
      if (reason === "io client disconnect") {
        setState("offline");
      } else if (reason === "io server disconnect") {
        // The server closed it (logout elsewhere, session ended): no automatic reconnect.
        setState("offline", "disconnected by the server");
        showLogin("Your session ended: log in again.");
      } else {
        setState("reconnecting", reason);
      }
    });
    socket.on("connect_error", (err) => {
      const message = (err && err.message) || "connection failed";
      if (message.startsWith("unauthorized")) {
        setState("offline", message);
        showLogin("Log in again: " + message);
      } else {
        setState("reconnecting", message);
      }
    });
    socket.io.on("reconnect_attempt", (n) => setState("reconnecting", `attempt ${n}`));
    socket.io.on("reconnect_failed", () => setState("offline", "gave up"));

    socket.on("message", onMessage);
    socket.on("typing", onTyping);
  }

  function stop() {
    if (socket) {
      socket.removeAllListeners();
      socket.io.removeAllListeners();
      socket.disconnect();
      socket = null;
    }
    showLogin("");
  }

  function showLogin(reason) {
    if (socket) {
      socket.disconnect();
      socket = null;
    }
    me = null;
    current = null;
    rooms.clear();
    joined.clear();
    renderRooms();
    renderRoom();
    $("me").textContent = "";
    $("instance").textContent = "";
    $("logout").hidden = true;
    $("chat-view").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = reason;
    setState("offline");
  }

  // ---- rooms ---------------------------------------------------------------------------

  function join(event) {
    event.preventDefault();
    const name = $("room-input").value.trim();
    $("room-error").textContent = "";
    if (!socket || !socket.connected) {
      $("room-error").textContent = "not connected";
      return;
    }
    socket.emit("join", { room: name }, (reply) => {
      if (reply && reply.error) {
        $("room-error").textContent = reply.error;
        return;
      }
      room(name);
      joined.add(name);
      $("room-input").value = "";
      select(name);
      refreshMembers();
    });
  }

  function select(name) {
    current = name;
    room(name).unread = 0;
    renderRooms();
    renderRoom();
    refreshMembers();
    setState($("state").dataset.state);
    $("text").focus();
  }

  function renderRooms() {
    const list = $("room-list");
    list.replaceChildren();
    for (const [name, r] of rooms) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "#" + name;
      button.className = name === current ? "current" : "";
      button.dataset.joined = joined.has(name) ? "true" : "false";
      button.addEventListener("click", () => select(name));
      if (r.unread > 0) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = String(r.unread);
        button.append(badge);
      }
      li.append(button);
      list.append(li);
    }
  }

  // ---- messages ------------------------------------------------------------------------

  function send(event) {
    event.preventDefault();
    const input = $("text");
    const text = input.value;
    if (!text.trim() || !socket || current === null) return;
    $("send-error").textContent = "";
    const target = current;
    socket.emit("message", { room: target, text }, (reply) => {
      if (reply && reply.error) {
        const wait = reply.retry_after_ms ? ` (retry in ${Math.ceil(reply.retry_after_ms / 1000)} s)` : "";
        $("send-error").textContent = reply.error + wait;
        if (input.value === "") input.value = text;
      }
    });
    input.value = "";
    lastTypingSent = 0;
  }

  function onMessage(msg) {
    if (!msg || typeof msg.room !== "string" || !rooms.has(msg.room)) return;
    const r = room(msg.room);
    r.messages.push({ from: String(msg.from), text: String(msg.text), ts: Number(msg.ts) || Date.now() });
    if (r.messages.length > MAX_MESSAGES) r.messages.shift();
    seen(r, String(msg.from));
    clearTyping(r, String(msg.from));
    if (msg.room === current) {
      renderRoom();
    } else {
      r.unread += 1;
      renderRooms();
    }
  }

  function system(name, text) {
    const r = room(name);
    r.messages.push({ system: true, text, ts: Date.now() });
    if (name === current) renderRoom();
  }

  function renderRoom() {
    const list = $("messages");
    list.replaceChildren();
    $("room-title").textContent = current === null ? "Join a room to start" : "#" + current;
    if (current === null) {
      $("typing").textContent = "";
      $("members").replaceChildren();
      return;
    }
    const r = room(current);
    for (const m of r.messages) {
      const li = document.createElement("li");
      if (m.system) {
        li.className = "system";
        li.textContent = m.text;
      } else {
        li.className = me && m.from === me.name ? "mine" : "";
        const from = document.createElement("span");
        from.className = "from";
        from.textContent = m.from;
        const time = document.createElement("time");
        const date = new Date(m.ts);
        time.dateTime = date.toISOString();
        time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        const text = document.createElement("span");
        text.className = "text";
        text.textContent = m.text;
        li.append(from, time, text);
      }
      list.append(li);
    }
    list.scrollTop = list.scrollHeight;
    renderTyping();
    renderMembers();
  }

  // ---- typing and presence -------------------------------------------------------------

  function typed() {
    if (!socket || !socket.connected || current === null) return;
    const now = Date.now();
    if (now - lastTypingSent < TYPING_SEND_MS) return;
    lastTypingSent = now;
    socket.emit("typing", { room: current });
  }

  function onTyping(data) {
    if (!data || typeof data.room !== "string" || !rooms.has(data.room)) return;
    const r = room(data.room);
    const from = String(data.from);
    clearTimeout(r.typing.get(from));
    r.typing.set(from, setTimeout(() => clearTyping(r, from), TYPING_SHOW_MS));
    seen(r, from);
    if (data.room === current) {
      renderTyping();
      renderMembers();
    }
  }

  function clearTyping(r, from) {
    if (!r.typing.has(from)) return;
    clearTimeout(r.typing.get(from));
    r.typing.delete(from);
    if (r === rooms.get(current)) renderTyping();
  }

  function renderTyping() {
    const names = current === null ? [] : [...room(current).typing.keys()];
    const el = $("typing");
    if (names.length === 0) el.textContent = "";
    else if (names.length === 1) el.textContent = `${names[0]} is typing…`;
    else el.textContent = `${names.join(", ")} are typing…`;
  }

  // Who is in the room comes from the server (`members`, asked of every instance); until it
  // answers, or while it cannot, the list shows who was recently seen sending or typing.
  function seen(r, name) {
    r.active.set(name, Date.now());
    // Someone the last answer did not list: ask again rather than wait for the next round.
    if (!r.members || !r.members.includes(name)) refreshMembers();
  }

  function refreshMembers() {
    if (current === null || !socket || !socket.connected || !joined.has(current)) return;
    const name = current;
    socket.timeout(5000).emit("members", { room: name }, (err, reply) => {
      if (err || !reply || !Array.isArray(reply.members)) return;
      room(name).members = reply.members.map((m) => m.name);
      if (current === name) renderMembers();
    });
  }

  function renderMembers() {
    const list = $("members");
    list.replaceChildren();
    if (current === null) return;
    const r = room(current);
    const names = new Set();
    if (me && me.name) names.add(me.name);
    if (r.members) {
      for (const name of r.members) names.add(name);
    } else {
      const cutoff = Date.now() - ACTIVE_MS;
      for (const [name, ts] of r.active) if (ts >= cutoff) names.add(name);
    }
    for (const name of [...names].sort()) {
      const li = document.createElement("li");
      li.textContent = me && name === me.name ? `${name} (you)` : name;
      list.append(li);
    }
  }

  // ---- start ---------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", async () => {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("join-form").addEventListener("submit", join);
    $("send-form").addEventListener("submit", send);
    $("text").addEventListener("input", typed);
    setInterval(refreshMembers, 5000);
    if (typeof io !== "function") {
      $("login-error").textContent = "the socket.io client did not load (run `npm ci` in gateway/web on the server)";
      return;
    }
    // Already logged in (the session cookie): go straight to the chat.
    try {
      const response = await fetch("/api/me", { credentials: "same-origin" });
      if (response.ok) start(await response.json(), {});
    } catch (err) {
      // Not logged in, or offline: the form stays.
    }
  });
})();
