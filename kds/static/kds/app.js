/*
 * Kitchen screen: signs in with the REST API, follows /ws/kitchen/<outlet>/ and sends the
 * cooks' taps back over the same socket. Plain browser JavaScript, no build step.
 *
 * Invariants the screen keeps:
 * - tickets are keyed by id; an event replaces the whole ticket object, so a ticket is never
 *   drawn twice, and a snapshot replaces everything;
 * - events with seq <= the last applied one are ignored; a reconnect asks for since=<last seq>,
 *   so nothing committed while the socket was down is missed;
 * - ages are measured on the server's clock (offset estimated from the Date header, snapshot
 *   and event times), so a wrong device clock does not matter.
 */
"use strict";

(() => {
  const AUTH_KEY = "kds.auth";
  const CHOICE_KEY = "kds.choice";
  const PREF_CHOICE_KEY = "kds.lastChoice";
  const MUTED_KEY = "kds.muted";

  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  const OFFLINE_AFTER_MS = 20000; // "reconnecting" turns "offline" after this long
  const PING_EVERY_MS = 15000;
  const SILENT_SOCKET_MS = 40000; // no message (not even a pong) this long: the link is dead
  const HANDSHAKE_MS = 15000; // a socket not answering the first ping by then is replaced
  const COMMAND_TIMEOUT_MS = 10000;
  const ACK_SETTLE_MS = 3000;
  const TOAST_MS = 4000;
  const RECENT_BUMPS = 12;

  const TYPE_LABELS = { dine_in: "Dine in", takeaway: "Takeaway", delivery: "Delivery" };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function idOf(value) {
    if (value && typeof value === "object") return String(value.id);
    return value == null ? null : String(value);
  }

  function readJson(storage, key) {
    try {
      const raw = storage.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (_err) {
      return null;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Server clock. offset = server time - device time, in ms.
  // ---------------------------------------------------------------------------------------
  const clock = { offset: 0, uncertainty: Infinity };

  function serverNow() {
    return Date.now() + clock.offset;
  }

  // A sample says the server's clock read `serverMs` somewhere between device times t0 and t1.
  function clockSample(serverMs, t0, t1, resolutionMs) {
    if (!Number.isFinite(serverMs)) return;
    const uncertainty = (t1 - t0) / 2 + resolutionMs / 2;
    // Samples age: prefer a fresh one unless it is much worse than the one we hold.
    if (uncertainty <= clock.uncertainty + 250 || clock.uncertainty === Infinity) {
      clock.offset = serverMs + resolutionMs / 2 - (t0 + t1) / 2;
      clock.uncertainty = uncertainty;
    }
  }

  function clockFromDateHeader(response, t0, t1) {
    const header = response.headers.get("Date");
    if (header) clockSample(Date.parse(header), t0, t1, 1000);
  }

  // A live event was committed at `at`, so the server's clock now reads at least that.
  function clockLowerBound(atIso) {
    const at = Date.parse(atIso);
    if (Number.isFinite(at) && at > serverNow()) clock.offset = at - Date.now();
  }

  // ---------------------------------------------------------------------------------------
  // REST and tokens
  // ---------------------------------------------------------------------------------------
  class ApiFailure extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const auth = readJson(sessionStorage, AUTH_KEY) || { access: null, refresh: null, user: null };
  let refreshTimer = null;
  let refreshing = null;

  function jwtExpiry(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const payload = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
      return typeof payload.exp === "number" ? payload.exp * 1000 : null;
    } catch (_err) {
      return null;
    }
  }

  function saveAuth() {
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
    scheduleRefresh();
  }

  function forgetAuth() {
    clearTimeout(refreshTimer);
    auth.access = auth.refresh = auth.user = null;
    sessionStorage.removeItem(AUTH_KEY);
    sessionStorage.removeItem(CHOICE_KEY);
  }

  // Refresh ahead of expiry, so a reconnect never presents a stale token.
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    const expiry = auth.access && jwtExpiry(auth.access);
    if (!expiry || !auth.refresh) return;
    const remaining = expiry - serverNow();
    const wait = Math.max(5000, remaining - Math.min(60000, remaining * 0.2));
    refreshTimer = setTimeout(async () => {
      const outcome = await refreshAccess();
      if (outcome === null) refreshTimer = setTimeout(scheduleRefresh, 15000);
    }, wait);
  }

  // true: new tokens; false: the session is over (signed out); null: try again later.
  function refreshAccess() {
    if (!refreshing) {
      refreshing = (async () => {
        if (!auth.refresh) return false;
        try {
          const data = await api("/api/auth/token/refresh/", {
            method: "POST",
            body: { refresh: auth.refresh },
            useAuth: false,
          });
          auth.access = data.access;
          if (data.refresh) auth.refresh = data.refresh;
          saveAuth();
          return true;
        } catch (err) {
          if (err.status === 400 || err.status === 401 || err.status === 403) {
            signOut("Your session has ended. Please sign in again.");
            return false;
          }
          return null;
        } finally {
          refreshing = null;
        }
      })();
    }
    return refreshing;
  }

  async function api(path, { method = "GET", body, useAuth = true, retry = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (useAuth && auth.access) headers.Authorization = `Bearer ${auth.access}`;
    const t0 = Date.now();
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (_err) {
      throw new ApiFailure(0, "network_error", "The server cannot be reached.");
    }
    clockFromDateHeader(response, t0, Date.now());
    if (response.status === 401 && useAuth && retry && auth.refresh) {
      if (await refreshAccess()) return api(path, { method, body, useAuth, retry: false });
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_err) {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiFailure(
        response.status,
        error.code || `http_${response.status}`,
        error.message || `The server answered ${response.status}.`,
      );
    }
    return data;
  }

  // Every page of a paginated list (a plain array is accepted too).
  async function apiList(path) {
    const rows = [];
    let next = path;
    for (let page = 0; next && page < 50; page += 1) {
      const data = await api(next);
      if (Array.isArray(data)) return data;
      rows.push(...(data.results || []));
      next = data.next ? samePath(data.next) : null;
    }
    return rows;
  }

  function samePath(url) {
    const parsed = new URL(url, location.href);
    return parsed.pathname + parsed.search;
  }

  // ---------------------------------------------------------------------------------------
  // Screens
  // ---------------------------------------------------------------------------------------
  function show(screen) {
    for (const id of ["signin", "setup", "board"]) $(id).hidden = id !== screen;
    document.body.dataset.screen = screen;
  }

  function formError(id, message) {
    const node = $(id);
    node.textContent = message || "";
    node.hidden = !message;
  }

  function signOut(message) {
    closeStream();
    forgetAuth();
    showSignin(message);
  }

  function showSignin(message) {
    show("signin");
    formError("signin-error", message);
    $("signin-password").value = "";
    $("signin-username").focus();
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    formError("signin-error", "");
    const button = $("signin-submit");
    button.disabled = true;
    try {
      const data = await api("/api/auth/token/", {
        method: "POST",
        body: { username: $("signin-username").value.trim(), password: $("signin-password").value },
        useAuth: false,
      });
      auth.access = data.access;
      auth.refresh = data.refresh;
      auth.user = data.user || null;
      saveAuth();
      await showSetup();
    } catch (err) {
      formError(
        "signin-error",
        err.status === 401 || err.status === 400 ? "Wrong username or password." : err.message,
      );
    } finally {
      button.disabled = false;
    }
  });

  let setupOutlets = [];
  let setupStations = [];

  async function showSetup(message) {
    closeStream();
    show("setup");
    formError("setup-error", message);
    const outletSelect = $("setup-outlet");
    outletSelect.replaceChildren(el("option", null, "Loading…"));
    try {
      setupOutlets = await apiList("/api/outlets/");
    } catch (err) {
      if (err.status === 401) return; // signed out by the refresh path
      // The token response also lists the user's outlets; use it when the list is unreachable.
      setupOutlets = ((auth.user && auth.user.outlets) || []).map((o) =>
        typeof o === "object" ? o : { id: o, name: o },
      );
      formError("setup-error", err.message);
    }
    outletSelect.replaceChildren();
    for (const outlet of setupOutlets) {
      const option = el("option", null, outlet.name || outlet.id);
      option.value = String(outlet.id);
      outletSelect.append(option);
    }
    if (!setupOutlets.length) {
      formError("setup-error", message || "This account is not assigned to any outlet.");
      return;
    }
    const last = readJson(localStorage, PREF_CHOICE_KEY);
    if (last && setupOutlets.some((o) => String(o.id) === last.outlet)) {
      outletSelect.value = last.outlet;
    }
    await loadSetupStations(last && last.station);
  }

  async function loadSetupStations(preferred) {
    const outletId = $("setup-outlet").value;
    const select = $("setup-station");
    select.replaceChildren(el("option", null, "Loading…"));
    try {
      setupStations = await apiList(`/api/stations/?outlet=${encodeURIComponent(outletId)}`);
    } catch (err) {
      setupStations = [];
      formError("setup-error", err.message);
    }
    select.replaceChildren();
    for (const station of setupStations.filter((s) => s.kind !== "expo")) {
      const option = el("option", null, station.name);
      option.value = String(station.id);
      select.append(option);
    }
    const expo = el("option", null, "All stations (expo)");
    expo.value = "";
    select.append(expo);
    if (preferred !== undefined && preferred !== null) {
      if ([...select.options].some((o) => o.value === preferred)) select.value = preferred;
    }
  }

  $("setup-outlet").addEventListener("change", () => loadSetupStations(null));

  $("setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const outlet = setupOutlets.find((o) => String(o.id) === $("setup-outlet").value);
    if (!outlet) return;
    const stationId = $("setup-station").value;
    const station = setupStations.find((s) => String(s.id) === stationId) || null;
    const choice = { outlet, station, stations: setupStations };
    sessionStorage.setItem(CHOICE_KEY, JSON.stringify(choice));
    localStorage.setItem(
      PREF_CHOICE_KEY,
      JSON.stringify({ outlet: String(outlet.id), station: station ? String(station.id) : "" }),
    );
    openBoard(choice);
  });

  $("setup-signout").addEventListener("click", () => signOut());

  // ---------------------------------------------------------------------------------------
  // Board state
  // ---------------------------------------------------------------------------------------
  const state = {
    outlet: null,
    station: null, // null: every station (expo view)
    stationNames: new Map(),
    tickets: new Map(), // ticket id -> ticket object, exactly as the server last sent it
    lastSeq: null, // last seq applied; null until the first snapshot
    warnAfterS: 480,
    lateAfterS: 900,
    allDay: [],
    unavailable: new Map(),
    recentBumps: [], // [{id, order_number, station, bumped_at}] seen bumped here, newest first
  };

  const cards = new Map(); // ticket id -> {ticket, node}
  const pendingTargets = new Set(); // "item:<id>" / "ticket:<id>" awaiting an answer

  function openBoard(choice) {
    socketState.everLive = false;
    state.outlet = choice.outlet;
    state.station = choice.station || null;
    state.stationNames = new Map((choice.stations || []).map((s) => [String(s.id), s.name]));
    state.tickets = new Map();
    state.lastSeq = null;
    state.allDay = [];
    state.unavailable = new Map();
    state.recentBumps = [];
    state.warnAfterS = Number(choice.outlet.kds_warn_after_s) || 480;
    state.lateAfterS = Number(choice.outlet.kds_late_after_s) || 900;
    $("board-station").textContent = state.station ? state.station.name : "All stations (expo)";
    $("board-outlet").textContent = state.outlet.name || "";
    show("board");
    renderAll(true);
    syncClock();
    connect();
  }

  // A Date header sample before the first snapshot, and now and then against drift.
  let clockTimer = null;
  async function syncClock() {
    clearTimeout(clockTimer);
    const t0 = Date.now();
    try {
      const response = await fetch("/healthz", { cache: "no-store", credentials: "omit" });
      clockFromDateHeader(response, t0, Date.now());
      scheduleRefresh();
    } catch (_err) {
      // offline: the socket's reconnect loop reports it
    }
    clockTimer = setTimeout(syncClock, 5 * 60 * 1000);
  }

  function ticketVisible(ticket) {
    if (!ticket || ticket.status !== "open") return false;
    if (state.outlet && idOf(ticket.outlet) && idOf(ticket.outlet) !== String(state.outlet.id)) {
      return false;
    }
    return !state.station || idOf(ticket.station) === String(state.station.id);
  }

  function applySnapshot(message) {
    state.tickets = new Map();
    for (const ticket of message.tickets || []) {
      if (ticketVisible(ticket)) state.tickets.set(String(ticket.id), ticket);
    }
    state.lastSeq = message.seq;
    const thresholds = message.thresholds || {};
    if (Number.isFinite(thresholds.warn_after_s)) state.warnAfterS = thresholds.warn_after_s;
    if (Number.isFinite(thresholds.late_after_s)) state.lateAfterS = thresholds.late_after_s;
    state.allDay = Array.isArray(message.all_day)
      ? message.all_day.map(normaliseAllDay)
      : computeAllDay();
    if (Array.isArray(message.stations)) {
      state.stationNames = new Map(message.stations.map((s) => [String(s.id), s.name]));
    }
    renderAll(true); // a snapshot, reset or not, is the whole truth: redraw from scratch
  }

  function applyEvent(message) {
    if (state.lastSeq !== null && message.seq <= state.lastSeq) return;
    state.lastSeq = message.seq;
    if (message.at) clockLowerBound(message.at);
    const name = message.event || "";
    const data = message.data || {};
    if (name.startsWith("ticket.")) {
      applyTicket(name, data);
    } else if (name === "product.availability_changed") {
      applyAvailability(data);
    }
  }

  function applyTicket(name, ticket) {
    const id = String(ticket.id);
    const known = state.tickets.has(id);
    if (ticketVisible(ticket)) {
      state.tickets.set(id, ticket);
      if (!known) chime();
    } else {
      state.tickets.delete(id);
      const ours = !state.station || idOf(ticket.station) === String(state.station.id);
      if (name === "ticket.bumped" && ours) rememberBump(ticket);
    }
    if (name === "ticket.recalled") {
      state.recentBumps = state.recentBumps.filter((b) => b.id !== id);
    }
    state.allDay = computeAllDay();
    scheduleRender();
  }

  function rememberBump(ticket) {
    const id = String(ticket.id);
    state.recentBumps = [
      bumpEntry(ticket),
      ...state.recentBumps.filter((b) => b.id !== id),
    ].slice(0, RECENT_BUMPS);
  }

  function applyAvailability(product) {
    const id = String(product.id);
    if (product.is_available === false) {
      state.unavailable.set(id, product.name || id);
      toast(`${product.name || "A product"} is now unavailable`, "info");
    } else if (state.unavailable.delete(id)) {
      toast(`${product.name || "A product"} is available again`, "info");
    }
    renderAllDay();
  }

  function normaliseAllDay(row) {
    return {
      key: String(row.product || row.name),
      name: row.name || row.product_name || String(row.product),
      quantity: Number(row.quantity ?? row.qty ?? 0),
    };
  }

  // Open quantities per product over the tickets on screen: items not yet done or voided.
  function computeAllDay() {
    const totals = new Map();
    for (const ticket of state.tickets.values()) {
      for (const item of ticket.items || []) {
        if (item.status === "done" || item.status === "voided") continue;
        const key = String(item.product || item.name);
        const row = totals.get(key) || { key, name: item.name, quantity: 0 };
        row.quantity += Number(item.quantity) || 0;
        totals.set(key, row);
      }
    }
    return [...totals.values()];
  }

  // ---------------------------------------------------------------------------------------
  // Drawing
  // ---------------------------------------------------------------------------------------
  let renderQueued = false;

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderAll(false);
    });
  }

  function compareTickets(a, b) {
    const rushA = a.priority === "rush" ? 0 : 1;
    const rushB = b.priority === "rush" ? 0 : 1;
    if (rushA !== rushB) return rushA - rushB;
    const firedA = Date.parse(a.fired_at) || 0;
    const firedB = Date.parse(b.fired_at) || 0;
    if (firedA !== firedB) return firedA - firedB;
    return (
      String(a.order_number).localeCompare(String(b.order_number)) ||
      String(a.id).localeCompare(String(b.id))
    );
  }

  function renderAll(fromScratch) {
    const grid = $("tickets");
    if (fromScratch) {
      grid.replaceChildren();
      cards.clear();
    }
    const sorted = [...state.tickets.values()].sort(compareTickets);
    const keep = new Set();
    sorted.forEach((ticket, index) => {
      const id = String(ticket.id);
      let card = cards.get(id);
      if (!card || card.ticket !== ticket) {
        const node = buildTicket(ticket);
        if (card) card.node.replaceWith(node);
        card = { ticket, node };
        cards.set(id, card);
      }
      keep.add(id);
      const current = grid.children[index];
      if (current !== card.node) grid.insertBefore(card.node, current || null);
    });
    for (const [id, card] of cards) {
      if (!keep.has(id)) {
        card.node.remove();
        cards.delete(id);
      }
    }
    $("board-count").textContent = String(sorted.length);
    $("empty").hidden = sorted.length > 0;
    updateAges();
    renderAllDay();
  }

  function ticketMeta(ticket) {
    const parts = [TYPE_LABELS[ticket.type] || ticket.type || ""];
    if (ticket.table) parts.push(`Table ${ticket.table}`);
    if (ticket.customer_name) parts.push(ticket.customer_name);
    return parts.filter(Boolean).join(" · ");
  }

  function buildTicket(ticket) {
    const id = String(ticket.id);
    const node = el("article", "ticket");
    node.dataset.ticketId = id;
    node.dataset.priority = ticket.priority || "normal";
    if (pendingTargets.has(`ticket:${id}`)) node.classList.add("pending");

    const head = el("header", "ticket-head");
    head.setAttribute("role", "button");
    head.tabIndex = 0;
    head.title = "Tap to bump";
    head.dataset.action = "bump";
    const top = el("div", "head-top");
    top.append(el("span", "number", ticket.order_number || "—"));
    const age = el("span", "age", "");
    age.dataset.fired = ticket.fired_at || "";
    top.append(age);
    head.append(top);
    const meta = el("div", "head-meta");
    meta.append(el("span", "meta", ticketMeta(ticket)));
    if (ticket.priority === "rush") meta.append(el("span", "badge rush", "RUSH"));
    if (!state.station) {
      const stationName = state.stationNames.get(idOf(ticket.station));
      if (stationName) meta.append(el("span", "badge station", stationName));
    }
    meta.append(el("span", "bump-hint", "BUMP ✓"));
    head.append(meta);
    node.append(head);

    const list = el("ul", "items");
    for (const item of ticket.items || []) list.append(buildItem(item));
    node.append(list);
    if (ticket.note) node.append(el("p", "ticket-note", ticket.note));
    return node;
  }

  function buildItem(item) {
    const id = String(item.id);
    const status = item.status || "queued";
    const node = el("li", "item");
    node.dataset.itemId = id;
    node.dataset.status = status;
    if (status === "queued" || status === "cooking") {
      node.setAttribute("role", "button");
      node.tabIndex = 0;
      node.dataset.action = "item";
      node.title = status === "queued" ? "Tap to start" : "Tap when done";
    }
    if (pendingTargets.has(`item:${id}`)) node.classList.add("pending");
    const line = el("div", "item-line");
    line.append(el("span", "qty", `${item.quantity}×`));
    line.append(el("span", "name", item.name));
    const label = { cooking: "COOKING", done: "DONE", voided: "VOID" }[status];
    if (label) line.append(el("span", "state", label));
    node.append(line);
    const modifiers = item.modifiers || [];
    if (modifiers.length) {
      const mods = el("ul", "mods");
      for (const modifier of modifiers) {
        mods.append(el("li", null, typeof modifier === "object" ? modifier.name : modifier));
      }
      node.append(mods);
    }
    if (item.note) node.append(el("p", "note", item.note));
    return node;
  }

  function renderAllDay() {
    const list = $("allday-list");
    list.replaceChildren();
    const rows = state.allDay
      .filter((r) => r.quantity > 0)
      .sort((a, b) => b.quantity - a.quantity || a.name.localeCompare(b.name));
    for (const row of rows) {
      const item = el("li");
      item.dataset.product = row.key;
      item.append(el("span", "allday-qty", row.quantity));
      item.append(el("span", "allday-name", row.name));
      list.append(item);
    }
    $("allday-empty").hidden = rows.length > 0;
    const unavailable = $("unavailable-list");
    unavailable.replaceChildren(...[...state.unavailable.values()].map((n) => el("li", null, n)));
    $("unavailable").hidden = state.unavailable.size === 0;
  }

  function formatAge(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
  }

  function updateAges() {
    const now = serverNow();
    for (const { node } of cards.values()) {
      const age = node.querySelector(".age");
      const fired = Date.parse(age.dataset.fired);
      if (!Number.isFinite(fired)) continue;
      const seconds = Math.max(0, (now - fired) / 1000);
      age.textContent = formatAge(seconds);
      const level =
        seconds >= state.lateAfterS ? "late" : seconds >= state.warnAfterS ? "warn" : "ok";
      if (node.dataset.age !== level) node.dataset.age = level;
    }
    $("board-clock").textContent = formatClock(now);
  }

  function formatClock(ms) {
    const options = { hour: "2-digit", minute: "2-digit", hour12: false };
    try {
      return new Date(ms).toLocaleTimeString([], {
        ...options,
        timeZone: (state.outlet && state.outlet.timezone) || undefined,
      });
    } catch (_err) {
      return new Date(ms).toLocaleTimeString([], options);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Socket
  // ---------------------------------------------------------------------------------------
  const socketState = {
    ws: null,
    generation: 0,
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    lastMessageAt: 0,
    downSince: null,
    live: false, // the server answered on this socket: it is authorised and streaming
    everLive: false,
    triedRefresh: false,
  };

  function socketUrl() {
    const params = new URLSearchParams();
    params.set("token", auth.access || "");
    if (state.station) params.set("station", String(state.station.id));
    if (state.lastSeq !== null) params.set("since", String(state.lastSeq));
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const outlet = encodeURIComponent(String(state.outlet.id));
    return `${scheme}//${location.host}/ws/kitchen/${outlet}/?${params}`;
  }

  function connect() {
    clearTimeout(socketState.reconnectTimer);
    if (!state.outlet || !auth.access) return;
    if (socketState.ws) dropSocket(); // never two sockets: the old one would feed stale events
    const generation = ++socketState.generation;
    socketState.live = false;
    if (socketState.downSince === null) socketState.downSince = Date.now();
    updateConnection();
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (_err) {
      scheduleReconnect();
      return;
    }
    socketState.ws = ws;
    setTimeout(() => {
      if (generation !== socketState.generation || socketState.live) return;
      dropSocket();
      scheduleReconnect();
    }, HANDSHAKE_MS);
    ws.addEventListener("open", () => {
      if (generation !== socketState.generation) return;
      socketState.lastMessageAt = Date.now();
      // The pong proves the server accepted the token and streams to us.
      ws.send(JSON.stringify({ type: "ping" }));
    });
    ws.addEventListener("message", (event) => {
      if (generation !== socketState.generation) return;
      socketState.lastMessageAt = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_err) {
        return;
      }
      if (!socketState.live) markLive();
      handleMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (generation !== socketState.generation) return;
      socketState.ws = null;
      socketState.live = false;
      clearInterval(socketState.pingTimer);
      onSocketClosed(event.code);
    });
  }

  function markLive() {
    socketState.live = true;
    socketState.everLive = true;
    socketState.attempt = 0;
    socketState.downSince = null;
    socketState.triedRefresh = false;
    clearInterval(socketState.pingTimer);
    socketState.pingTimer = setInterval(heartbeat, PING_EVERY_MS);
    updateConnection();
  }

  function heartbeat() {
    const ws = socketState.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - socketState.lastMessageAt > SILENT_SOCKET_MS) {
      dropSocket();
      scheduleReconnect();
      return;
    }
    ws.send(JSON.stringify({ type: "ping" }));
  }

  // Forget the current socket without waiting for a closing handshake a dead link never ends.
  function dropSocket() {
    const ws = socketState.ws;
    socketState.generation += 1;
    socketState.ws = null;
    socketState.live = false;
    clearInterval(socketState.pingTimer);
    if (ws) {
      try {
        ws.close(1000);
      } catch (_err) {
        // already closed
      }
    }
    failAllPending("The connection was lost before the server answered.");
  }

  function closeStream() {
    clearTimeout(socketState.reconnectTimer);
    dropSocket();
    socketState.attempt = 0;
    socketState.downSince = null;
  }

  async function onSocketClosed(code) {
    failAllPending("The connection was lost before the server answered.");
    if (socketState.downSince === null) socketState.downSince = Date.now();
    if (code === 4401) {
      // The token was refused: refresh once, then reconnect; a second refusal ends the session.
      if (socketState.triedRefresh) {
        signOut("Your session has ended. Please sign in again.");
        return;
      }
      socketState.triedRefresh = true;
      const outcome = await refreshAccess();
      if (outcome === false) return;
      if (outcome === true) {
        connect();
        return;
      }
    } else if (code === 4403 || code === 4404) {
      await showSetup(
        code === 4403
          ? "This account may not open this outlet's kitchen screen."
          : "That outlet or station no longer exists.",
      );
      return;
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    clearTimeout(socketState.reconnectTimer);
    if (socketState.downSince === null) socketState.downSince = Date.now();
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** socketState.attempt);
    const delay = base * (0.8 + Math.random() * 0.4); // jitter: screens do not reconnect in step
    socketState.attempt += 1;
    updateConnection();
    socketState.reconnectTimer = setTimeout(connect, delay);
  }

  function updateConnection() {
    let status = "connected";
    if (!socketState.live) {
      const downFor = socketState.downSince === null ? 0 : Date.now() - socketState.downSince;
      status = !navigator.onLine || downFor > OFFLINE_AFTER_MS ? "offline" : "reconnecting";
    }
    const indicator = $("conn");
    if (indicator.dataset.state !== status) {
      indicator.dataset.state = status;
      $("conn-label").textContent = {
        connected: "Live",
        reconnecting: socketState.everLive ? "Reconnecting…" : "Connecting…",
        offline: "Offline",
      }[status];
      document.body.dataset.conn = status;
    }
  }

  window.addEventListener("online", () => {
    if (document.body.dataset.screen === "board" && !socketState.live) connect();
  });
  window.addEventListener("offline", updateConnection);
  // A tablet waking from sleep may hold a socket that died meanwhile: check it at once.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible" || document.body.dataset.screen !== "board") return;
    if (socketState.live) heartbeat();
    else connect();
  });

  function handleMessage(message) {
    switch (message.type) {
      case "snapshot":
        applySnapshot(message);
        break;
      case "event":
        applyEvent(message);
        break;
      case "ack":
        settleCommand(message.request_id, message.seq);
        break;
      case "error":
        if (message.request_id !== undefined && pending.has(message.request_id)) {
          failCommand(message.request_id, message.message || message.code);
        } else if (message.message) {
          toast(message.message);
        }
        break;
      default:
        break; // pong and anything newer than this page: nothing to draw
    }
  }

  // ---------------------------------------------------------------------------------------
  // Commands
  // ---------------------------------------------------------------------------------------
  const pending = new Map(); // request_id -> {target, timer}
  let requestCounter = 0;

  function newRequestId() {
    const random = new Uint32Array(2);
    crypto.getRandomValues(random);
    requestCounter += 1;
    return `kds-${requestCounter}-${random[0].toString(36)}${random[1].toString(36)}`;
  }

  function setPendingMark(target, on) {
    if (on) pendingTargets.add(target);
    else pendingTargets.delete(target);
    const [kind, id] = target.split(":");
    const attribute = kind === "item" ? "data-item-id" : "data-ticket-id";
    const selector = `[${attribute}="${CSS.escape(id)}"]`;
    for (const node of document.querySelectorAll(selector)) node.classList.toggle("pending", on);
  }

  function sendCommand(payload, target) {
    if (pendingTargets.has(target)) return; // a second tap while the first is in flight
    const ws = socketState.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !socketState.live) {
      toast("Not connected. Try again when the screen is back online.");
      return;
    }
    const requestId = newRequestId();
    ws.send(JSON.stringify({ ...payload, request_id: requestId }));
    const timer = setTimeout(
      () => failCommand(requestId, "No answer from the server. Try again."),
      COMMAND_TIMEOUT_MS,
    );
    pending.set(requestId, { target, timer });
    setPendingMark(target, true);
  }

  // Acked: keep the mark until the resulting event has been drawn (or a short while passed).
  function settleCommand(requestId, seq) {
    const entry = pending.get(requestId);
    if (!entry) return;
    pending.delete(requestId);
    clearTimeout(entry.timer);
    const clear = () => setPendingMark(entry.target, false);
    if (!Number.isFinite(seq) || (state.lastSeq !== null && state.lastSeq >= seq)) {
      clear();
      return;
    }
    const started = Date.now();
    const wait = setInterval(() => {
      const applied = state.lastSeq !== null && state.lastSeq >= seq;
      if (applied || Date.now() - started > ACK_SETTLE_MS) {
        clearInterval(wait);
        clear();
      }
    }, 50);
  }

  function failCommand(requestId, message) {
    const entry = pending.get(requestId);
    if (!entry) return;
    pending.delete(requestId);
    clearTimeout(entry.timer);
    setPendingMark(entry.target, false);
    toast(message);
  }

  function failAllPending(message) {
    for (const requestId of [...pending.keys()]) failCommand(requestId, message);
  }

  function findTicket(node) {
    const card = node.closest("[data-ticket-id]");
    return card ? state.tickets.get(card.dataset.ticketId) : null;
  }

  function activate(target) {
    const actionNode = target.closest("[data-action]");
    if (!actionNode) return;
    const ticket = findTicket(actionNode);
    if (!ticket) return;
    if (actionNode.dataset.action === "bump") {
      sendCommand({ type: "bump", ticket: String(ticket.id) }, `ticket:${ticket.id}`);
      return;
    }
    const itemId = actionNode.dataset.itemId;
    const item = (ticket.items || []).find((i) => String(i.id) === itemId);
    if (!item) return;
    const next = { queued: "cooking", cooking: "done" }[item.status || "queued"];
    if (next) sendCommand({ type: "item_status", item: itemId, status: next }, `item:${itemId}`);
  }

  $("tickets").addEventListener("click", (event) => activate(event.target));
  $("tickets").addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      activate(event.target);
    }
  });

  // ---------------------------------------------------------------------------------------
  // Recall
  // ---------------------------------------------------------------------------------------
  // The server recalls only the most recently bumped ticket of a station, so the panel offers
  // exactly that one per station (this station's, or every station's in the expo view).
  async function openRecall() {
    $("recall-panel").hidden = false;
    drawRecallList(lastBumpPerStation(state.recentBumps));
    const params = new URLSearchParams({
      outlet: String(state.outlet.id),
      status: "done",
      ordering: "-bumped_at",
    });
    if (state.station) params.set("station", String(state.station.id));
    try {
      const data = await api(`/api/kds/tickets/?${params}`);
      const rows = (Array.isArray(data) ? data : data.results || []).map(bumpEntry);
      const byId = new Map(rows.map((b) => [b.id, b]));
      for (const bump of state.recentBumps) if (!byId.has(bump.id)) byId.set(bump.id, bump);
      if (!$("recall-panel").hidden) drawRecallList(lastBumpPerStation([...byId.values()]));
    } catch (err) {
      toast(err.message);
    }
  }

  function bumpEntry(ticket) {
    return {
      id: String(ticket.id),
      order_number: ticket.order_number,
      station: idOf(ticket.station),
      bumped_at: ticket.bumped_at,
    };
  }

  function lastBumpPerStation(bumps) {
    const latest = new Map();
    for (const bump of bumps) {
      if (state.tickets.has(bump.id)) continue; // already back on screen
      const held = latest.get(bump.station);
      if (!held || (Date.parse(bump.bumped_at) || 0) > (Date.parse(held.bumped_at) || 0)) {
        latest.set(bump.station, bump);
      }
    }
    return [...latest.values()].sort(
      (a, b) => (Date.parse(b.bumped_at) || 0) - (Date.parse(a.bumped_at) || 0),
    );
  }

  function drawRecallList(rows) {
    const list = $("recall-list");
    list.replaceChildren();
    for (const row of rows) {
      const item = el("li");
      const button = el("button", "recall-item");
      button.type = "button";
      button.dataset.ticketId = row.id;
      button.append(el("span", "number", row.order_number || "—"));
      const details = [];
      if (!state.station && state.stationNames.get(row.station)) {
        details.push(state.stationNames.get(row.station));
      }
      const bumped = Date.parse(row.bumped_at);
      if (Number.isFinite(bumped)) {
        details.push(`bumped ${formatAge((serverNow() - bumped) / 1000)} ago`);
      }
      button.append(el("span", "ago", details.join(" · ")));
      item.append(button);
      list.append(item);
    }
    $("recall-empty").hidden = rows.length > 0;
  }

  $("recall-button").addEventListener("click", openRecall);
  $("recall-close").addEventListener("click", () => {
    $("recall-panel").hidden = true;
  });
  $("recall-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-ticket-id]");
    if (!button) return;
    $("recall-panel").hidden = true;
    const ticketId = button.dataset.ticketId;
    sendCommand({ type: "recall", ticket: ticketId }, `ticket:${ticketId}`);
  });

  // ---------------------------------------------------------------------------------------
  // Sound: a short chime made with WebAudio. Browsers allow audio only after a user gesture.
  // ---------------------------------------------------------------------------------------
  const sound = { context: null, muted: localStorage.getItem(MUTED_KEY) === "1", lastAt: 0 };

  function soundReady() {
    return sound.context !== null && sound.context.state === "running";
  }

  function unlockSound() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) return;
    if (!sound.context) sound.context = new AudioContextClass();
    const resumed = sound.context.state === "running" ? Promise.resolve() : sound.context.resume();
    resumed.then(updateSoundHint, updateSoundHint);
  }

  function updateSoundHint() {
    $("sound-hint").hidden = sound.muted || soundReady();
    $("menu-sound").textContent = sound.muted ? "Unmute sound" : "Mute sound";
  }

  function chime() {
    if (sound.muted || !soundReady()) return;
    const now = Date.now();
    if (now - sound.lastAt < 1500) return; // a burst of tickets rings once
    sound.lastAt = now;
    const ctx = sound.context;
    const start = ctx.currentTime + 0.01;
    [
      [880, 0, 0.16],
      [1318.5, 0.18, 0.32],
    ].forEach(([frequency, offset, length]) => {
      const oscillator = ctx.createOscillator();
      const gain = ctx.createGain();
      oscillator.type = "triangle";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.6, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + length);
      oscillator.connect(gain).connect(ctx.destination);
      oscillator.start(start + offset);
      oscillator.stop(start + offset + length + 0.02);
    });
    document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  }

  document.addEventListener("pointerdown", unlockSound, true);
  document.addEventListener("keydown", unlockSound, true);

  // ---------------------------------------------------------------------------------------
  // Top bar, menu, toasts
  // ---------------------------------------------------------------------------------------
  function toast(text, kind = "error") {
    const box = $("toasts");
    const node = el("div", `toast ${kind}`, text);
    box.append(node);
    while (box.children.length > 3) box.firstElementChild.remove();
    setTimeout(() => node.remove(), TOAST_MS);
  }

  $("sound-hint").addEventListener("click", unlockSound);
  $("allday-toggle").addEventListener("click", () => {
    const aside = $("allday");
    aside.hidden = !aside.hidden;
    $("allday-toggle").setAttribute("aria-pressed", String(!aside.hidden));
  });
  $("menu-button").addEventListener("click", () => {
    $("menu").hidden = !$("menu").hidden;
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest("#menu, #menu-button")) $("menu").hidden = true;
  });
  $("menu-fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) {
      document.exitFullscreen();
    } else if (document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen();
    }
  });
  $("menu-sound").addEventListener("click", () => {
    sound.muted = !sound.muted;
    localStorage.setItem(MUTED_KEY, sound.muted ? "1" : "0");
    updateSoundHint();
  });
  $("menu-station").addEventListener("click", () => {
    sessionStorage.removeItem(CHOICE_KEY);
    showSetup();
  });
  $("menu-signout").addEventListener("click", () => signOut());

  setInterval(() => {
    if (document.body.dataset.screen !== "board") return;
    updateAges();
    updateConnection();
  }, 1000);

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------
  updateSoundHint();
  // Expiry is the server's call (the device clock may be wrong): a dead refresh token answers
  // 401 on first use, which signs out.
  if (!auth.refresh) {
    forgetAuth();
    showSignin();
  } else {
    scheduleRefresh();
    const choice = readJson(sessionStorage, CHOICE_KEY);
    if (choice && choice.outlet) openBoard(choice);
    else showSetup();
  }
})();
