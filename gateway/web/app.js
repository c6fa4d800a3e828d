// The chat page. Every piece of user or server text goes into the DOM through textContent:
// nothing received is ever parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_MESSAGES = 500; // kept per room
  const TYPING_SHOW_MS = 3000; // how long "X is typing" stays after the last notice
  const TYPING_SEND_MS = 1500; // at most one typing notice per room this often
  const ACTIVE_MS = 10 * 60 * 1000; // "recently active": seen in the last 10 minutes
  const HISTORY_PAGE = 50; // messages asked per `history` request (the server allows 100)
  const HISTORY_TIMEOUT_MS = 10000; // a `history` request with no answer by then has failed
  const NEAR_TOP_PX = 40; // scrolled this close to the top: load older messages
  const NEAR_BOTTOM_PX = 40; // this close to the bottom counts as "at the bottom"

  let socket = null;
  let me = null; // {name, ...}
  let current = null; // the room shown
  // room -> {messages: [], unread, active: Map(name -> ts), typing: Map(name -> timer),
  //          lastId, more, loading, historyLoaded, members}
  // messages: in the server's order (by id), each {id, key, from, text, ts, pending} or
  // {system: true, text, ts}; lastId: the newest message id seen (re-joins ask for what came
  // after it); more: older messages than the oldest shown exist on the server.
  const rooms = new Map();
  const joined = new Set(); // rooms the current connection has joined (data-joined on their buttons)
  let lastTypingSent = 0;

  function room(name) {
    let r = rooms.get(name);
    if (!r) {
      r = {
        messages: [],
        unread: 0,
        active: new Map(),
        typing: new Map(),
        lastId: null,
        more: false,
        loading: false,
        historyLoaded: false,
      };
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
    forgetRooms();
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
    restoreRooms();
    setState("connecting");

    socket = io({ auth, transports: ["websocket", "polling"] });

    socket.on("connect", () => {
      setState("connected");
      // After a reconnect the server knows none of our rooms (and after a reload, the rooms
      // come from the last visit): join them again, each asking for what it missed.
      for (const name of rooms.keys()) rejoin(name);
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
    socket.on("stored", onStored);
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
      const known = rooms.has(name);
      room(name);
      joined.add(name);
      $("room-input").value = "";
      select(name);
      refreshMembers();
      saveRooms();
      // The room's recent past, above whatever arrives live from now on.
      if (!known || !room(name).historyLoaded) loadLatest(name);
    });
  }

  // Joins `name` again on a new connection. With the id of the newest message seen, the
  // server replays what came after it (as ordinary `message` events, before the ack); when it
  // cannot (that history is gone) the room says so and shows the latest messages instead.
  function rejoin(name) {
    const r = room(name);
    const since = r.lastId;
    const request = since === null ? { room: name } : { room: name, since };
    socket.emit("join", request, (reply) => {
      if (reply && reply.error) {
        system(name, `could not re-join: ${reply.error}`);
        return;
      }
      joined.add(name);
      renderRooms();
      if (name === current) refreshMembers();
      if (since !== null && reply && reply.recovered === true) return; // replayed, in order
      if (since !== null && reply && reply.recovered === false) {
        system(name, "history could not be recovered: messages sent while you were away may be missing");
      }
      // Nothing to resume from, history lost, or a server that does not replay: the latest.
      loadLatest(name);
    });
  }

  // The rooms of the last visit (per user, in this browser), so that a reload or a new tab
  // comes back to them.
  function storageKey() {
    return me && me.name ? `chat.rooms:${me.name}` : null;
  }

  function saveRooms() {
    const key = storageKey();
    if (!key) return;
    try {
      localStorage.setItem(key, JSON.stringify({ rooms: [...rooms.keys()], current }));
    } catch (err) {
      // Storage off or full: the rooms are simply not remembered.
    }
  }

  function restoreRooms() {
    const key = storageKey();
    if (!key) return;
    let saved = null;
    try {
      saved = JSON.parse(localStorage.getItem(key) || "null");
    } catch (err) {
      saved = null;
    }
    if (!saved || !Array.isArray(saved.rooms)) return;
    for (const name of saved.rooms) if (typeof name === "string" && name) room(name);
    if (typeof saved.current === "string" && rooms.has(saved.current)) current = saved.current;
    renderRooms();
    renderRoom({ bottom: true });
  }

  function forgetRooms() {
    const key = storageKey();
    if (!key) return;
    try {
      localStorage.removeItem(key);
    } catch (err) {
      // Nothing stored.
    }
  }

  function select(name) {
    current = name;
    room(name).unread = 0;
    renderRooms();
    renderRoom({ bottom: true });
    saveRooms();
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
        return;
      }
      // Our own message arrives as a `message` too; the ack may tell its id first.
      if (reply && typeof reply.key === "string" && typeof reply.id === "string") {
        stored(target, reply.key, reply.id);
      }
    });
    input.value = "";
    lastTypingSent = 0;
  }

  // Message ids are Redis stream entry ids, "<ms>-<seq>": compared as two numbers. Returns
  // null when either is not of that form (then the order is the order of arrival).
  function compareIds(a, b) {
    const pa = parseId(a);
    const pb = parseId(b);
    if (!pa || !pb) return null;
    if (pa[0] !== pb[0]) return pa[0] < pb[0] ? -1 : 1;
    if (pa[1] !== pb[1]) return pa[1] < pb[1] ? -1 : 1;
    return 0;
  }

  function parseId(id) {
    const match = typeof id === "string" ? /^(\d+)-(\d+)$/.exec(id) : null;
    return match ? [BigInt(match[1]), BigInt(match[2])] : null;
  }

  // A message object off the wire (a `message` event or a `history` entry), checked.
  function normalize(msg) {
    if (!msg || typeof msg !== "object") return null;
    const id = typeof msg.id === "string" && msg.id !== "" ? msg.id : null;
    const key = typeof msg.key === "string" && msg.key !== "" ? msg.key : null;
    return {
      id,
      key,
      from: String(msg.from),
      text: String(msg.text),
      ts: Number(msg.ts) || Date.now(),
      pending: id === null && msg.pending === true,
    };
  }

  function noteId(r, id) {
    if (id === null) return;
    if (r.lastId === null) r.lastId = id;
    else {
      const order = compareIds(id, r.lastId);
      if (order === null || order > 0) r.lastId = id;
    }
  }

  // Puts `m` where its id belongs: before the first shown message with a greater id, else
  // last (so live messages, pending ones and messages with ids of another form go last).
  function place(r, m) {
    let at = r.messages.length;
    if (m.id !== null && parseId(m.id)) {
      const i = r.messages.findIndex((e) => !e.system && e.id !== null && compareIds(e.id, m.id) === 1);
      if (i >= 0) at = i;
    }
    r.messages.splice(at, 0, m);
  }

  // Adds a message to room `r` unless it is shown already (the same id, or the same key:
  // a pending message that has been stored since). Returns whether the view changed.
  function add(r, m) {
    if (m.id !== null && r.messages.some((e) => e.id === m.id)) return false;
    if (m.key !== null) {
      const same = r.messages.find((e) => e.key === m.key);
      if (same) {
        if (m.id === null || same.id !== null) return false;
        settle(r, same, m.id);
        return true;
      }
    }
    place(r, m);
    noteId(r, m.id);
    return true;
  }

  // A pending message got its id: no longer pending, and moved to where the id says.
  function settle(r, entry, id) {
    entry.id = id;
    entry.pending = false;
    noteId(r, id);
    if (parseId(id)) {
      r.messages.splice(r.messages.indexOf(entry), 1);
      place(r, entry);
    }
  }

  function onMessage(msg) {
    if (!msg || typeof msg.room !== "string" || !rooms.has(msg.room)) return;
    const m = normalize(msg);
    const r = room(msg.room);
    if (!add(r, m)) return;
    trim(r, msg.room);
    seen(r, m.from);
    clearTyping(r, m.from);
    if (msg.room === current) {
      renderRoom({ bottom: me !== null && m.from === me.name });
    } else {
      r.unread += 1;
      renderRooms();
    }
  }

  // `stored {room, key, id}`: a message accepted while Redis was unreachable is now stored.
  function onStored(data) {
    if (!data || typeof data.room !== "string" || !rooms.has(data.room)) return;
    if (typeof data.key !== "string" || typeof data.id !== "string") return;
    stored(data.room, data.key, data.id);
  }

  function stored(name, key, id) {
    const r = room(name);
    const entry = r.messages.find((e) => e.key === key);
    if (!entry || entry.id !== null) return;
    if (r.messages.some((e) => e.id === id)) {
      r.messages.splice(r.messages.indexOf(entry), 1); // shown twice: keep the stored one
    } else {
      settle(r, entry, id);
    }
    if (name === current) renderRoom();
  }

  // At most MAX_MESSAGES kept, dropping the oldest (which `history` can bring back), but not
  // while the reader is scrolled up in this room.
  function trim(r, name) {
    if (r.messages.length <= MAX_MESSAGES) return;
    if (name === current && !atBottom()) return;
    const dropped = r.messages.splice(0, r.messages.length - MAX_MESSAGES);
    if (dropped.some((e) => !e.system)) r.more = true;
  }

  function system(name, text) {
    const r = room(name);
    r.messages.push({ system: true, id: null, key: null, text, ts: Date.now() });
    if (name === current) renderRoom();
  }

  // ---- history -------------------------------------------------------------------------

  // `history {room, before?, limit}`; calls back with the checked messages and `more`, or
  // with an error string.
  function history(name, before, done) {
    if (!socket || !socket.connected) return done("not connected");
    const request = { room: name, limit: HISTORY_PAGE };
    if (before !== null) request.before = before;
    socket.timeout(HISTORY_TIMEOUT_MS).emit("history", request, (err, reply) => {
      if (err) return done("no answer");
      if (!reply || reply.error || !Array.isArray(reply.messages)) {
        return done((reply && reply.error) || "bad answer");
      }
      done(null, reply.messages.map(normalize).filter(Boolean), reply.more === true);
    });
  }

  // The latest messages of a room, merged with those shown.
  function loadLatest(name) {
    const r = room(name);
    if (!joined.has(name)) return;
    r.loading = true;
    history(name, null, (err, messages, more) => {
      r.loading = false;
      if (!rooms.has(name) || rooms.get(name) !== r) return;
      if (err) {
        system(name, `could not load the history: ${err}`);
        return;
      }
      for (const m of messages) add(r, m);
      // Older than the oldest shown: only the first answer knows (later ones come after it).
      if (!r.historyLoaded) r.more = more;
      r.historyLoaded = true;
      if (name === current) {
        renderRoom();
        fill(name);
      }
    });
  }

  // The page before the oldest message shown, kept in place on the screen.
  function loadOlder(name) {
    const r = room(name);
    if (!r.more || r.loading || !joined.has(name)) return;
    const oldest = r.messages.find((e) => !e.system && e.id !== null);
    if (!oldest) return loadLatest(name);
    r.loading = true;
    if (name === current) renderRoom({ keep: true });
    history(name, oldest.id, (err, messages, more) => {
      r.loading = false;
      if (!rooms.has(name) || rooms.get(name) !== r) return;
      if (err) {
        if (name === current) renderRoom({ keep: true });
        return;
      }
      for (const m of messages) add(r, m);
      r.more = more;
      if (name === current) {
        renderRoom({ keep: true });
        fill(name);
      }
    });
  }

  // While the list does not fill its box (nothing to scroll), older messages are loaded
  // without waiting for a scroll that cannot happen.
  function fill(name) {
    const list = $("messages");
    if (name === current && room(name).more && list.scrollHeight <= list.clientHeight + NEAR_TOP_PX) {
      loadOlder(name);
    }
  }

  function onScroll() {
    if (current !== null && $("messages").scrollTop <= NEAR_TOP_PX) loadOlder(current);
  }

  function atBottom() {
    const list = $("messages");
    return list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
  }

  // ---- the message list ----------------------------------------------------------------

  // Redraws the room shown. Scrolling: `bottom` goes to the newest; `keep` keeps what is on
  // screen where it is when messages are added above it; otherwise the view follows new
  // messages only if it was at the bottom.
  function renderRoom(options = {}) {
    const list = $("messages");
    const follow = options.bottom || atBottom();
    const fromBottom = list.scrollHeight - list.scrollTop;
    const top = list.scrollTop;
    list.replaceChildren();
    $("room-title").textContent = current === null ? "Join a room to start" : "#" + current;
    if (current === null) {
      $("typing").textContent = "";
      $("members").replaceChildren();
      return;
    }
    const r = room(current);
    if (r.more || r.loading) {
      const li = document.createElement("li");
      li.className = "history";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = r.loading ? "Loading…" : "Load older messages";
      button.disabled = r.loading;
      const name = current;
      button.addEventListener("click", () => loadOlder(name));
      li.append(button);
      list.append(li);
    } else if (r.historyLoaded) {
      const li = document.createElement("li");
      li.className = "history start";
      li.textContent = `The beginning of #${current}`;
      list.append(li);
    }
    for (const m of r.messages) {
      const li = document.createElement("li");
      if (m.id !== null) li.dataset.id = m.id;
      if (m.system) {
        li.className = "system";
        li.textContent = m.text;
      } else {
        const classes = [];
        if (me && m.from === me.name) classes.push("mine");
        if (m.pending) classes.push("pending");
        li.className = classes.join(" ");
        const from = document.createElement("span");
        from.className = "from";
        from.textContent = m.from;
        const time = document.createElement("time");
        const date = new Date(m.ts);
        time.dateTime = date.toISOString();
        time.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        li.append(from, time);
        if (m.pending) {
          const status = document.createElement("span");
          status.className = "status";
          status.textContent = "pending";
          status.title = "accepted, not stored yet: other instances get it once it is";
          li.append(status);
        }
        const text = document.createElement("span");
        text.className = "text";
        text.textContent = m.text;
        li.append(text);
      }
      list.append(li);
    }
    if (options.keep) list.scrollTop = list.scrollHeight - fromBottom;
    else if (follow) list.scrollTop = list.scrollHeight;
    else list.scrollTop = top;
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
    $("messages").addEventListener("scroll", onScroll);
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
