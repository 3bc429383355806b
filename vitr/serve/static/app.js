// vitr search page: query the JSON API, show a grid of moments, play the chosen one from its start.
"use strict";

const PAGE_SIZE = 24;
const form = document.getElementById("search-form");
const queryInput = document.getElementById("query");
const modeSelect = document.getElementById("mode");
const statusLine = document.getElementById("status");
const weakNote = document.getElementById("weak-note");
const grid = document.getElementById("results");
const pager = document.getElementById("pager");
const player = document.getElementById("player");
const playerPanel = document.getElementById("player-panel");
const playerCaption = document.getElementById("player-caption");
const uploadInput = document.getElementById("upload");
const folderInput = document.getElementById("folder");
const minScoreInput = document.getElementById("min-score");
// The query on screen: {kind: "text", q, mode} | {kind: "upload", file} | {kind: "similar", videoId, name},
// with the filters it was asked with, so the pager turns the pages of the same search.
let current = null;

function formatTime(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function momentLabel(hit) {
  if (hit.start === null) return "whole video";
  return `${formatTime(hit.start)}–${formatTime(hit.end ?? hit.start)}`;
}

function currentFilters() {
  const filters = {};
  const folder = folderInput.value.trim();
  if (folder) filters.path_prefix = folder;
  const minScore = minScoreInput.value.trim();
  if (minScore !== "" && Number.isFinite(Number(minScore))) filters.min_score = minScore;
  return filters;
}

function request(query, offset) {
  // -> [url, fetch options] for one page of `query`
  const params = new URLSearchParams({ k: PAGE_SIZE, offset, ...query.filters });
  if (query.kind === "upload") {
    const upload = new FormData();
    upload.append("file", query.file);
    return [`/api/search/video?${params}`, { method: "POST", body: upload }];
  }
  if (query.kind === "similar") {
    params.set("video_id", query.videoId);
    return [`/api/search/similar?${params}`, {}];
  }
  params.set("q", query.q);
  if (query.mode) params.set("mode", query.mode);  // none: the server's default (hybrid where the index holds text)
  return [`/api/search?${params}`, {}];
}

async function search(query, offset) {
  if (!query) return;  // nothing was searched yet: there is no page to turn
  current = { ...query, offset };
  clearPlayer();
  statusLine.textContent = "Searching…";
  statusLine.classList.remove("error");
  const [url, options] = request(query, offset);
  let response;
  let reply;
  try {
    response = await fetch(url, options);
    reply = await response.json();
  } catch (error) {
    // The server could not be reached, or answered with something other than JSON (a proxy's error page).
    showError(response && !response.ok
      ? `The search failed (HTTP ${response.status}).`
      : "The search failed: the server could not be reached or sent an unreadable reply.");
    return;
  }
  if (!response.ok) {
    showError(typeof reply?.detail === "string" ? reply.detail : `The search failed (HTTP ${response.status}).`);
    return;
  }
  render(reply);
}

function newSearch(query) {
  search({ ...query, filters: currentFilters() }, 0);
}

function showError(message) {
  statusLine.textContent = message;
  statusLine.classList.add("error");
  grid.replaceChildren();
  pager.hidden = true;
  weakNote.hidden = true;
}

function clearPlayer() {
  // A new search starts from a clean page: the last result's player and caption belong to the old one.
  player.pause();
  player.removeAttribute("src");
  delete player.dataset.videoId;
  delete player.dataset.start;
  player.load();
  playerCaption.textContent = "";
  playerPanel.hidden = true;
}

function render(body) {
  const first = body.offset + 1;
  statusLine.textContent = body.results.length
    ? `Results ${first}–${body.offset + body.results.length} for “${body.query}”`
    : `No videos match “${body.query}”.`;
  // The API judges the best hit against this index's scores for unrelated queries (see docs/deploy.md).
  weakNote.hidden = body.weak !== true;
  weakNote.textContent = body.weak === true
    ? `Weak matches: even the best result scores below ${body.weak_below.toFixed(3)}, a score unrelated ` +
      "queries reach in this collection. It probably holds nothing like this."
    : "";
  const range = scoreRange(body.results);
  grid.replaceChildren(...body.results.map((hit) => card(hit, range)));
  pager.hidden = !(body.offset > 0 || body.has_more);
  document.getElementById("prev").disabled = body.offset === 0;
  document.getElementById("next").disabled = !body.has_more;
}

function card(hit, range) {
  const item = document.createElement("article");
  item.className = "hit";
  const button = document.createElement("button");
  button.type = "button";
  button.className = hit.weak === true ? "result weak" : "result";
  button.dataset.videoId = hit.video_id;
  button.dataset.start = hit.start ?? 0;
  const img = document.createElement("img");
  img.src = hit.thumbnail_url;
  img.alt = hit.name;
  img.loading = "lazy";
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = hit.name;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${momentLabel(hit)} · score ${hit.score.toFixed(3)}${hit.weak === true ? " · weak match" : ""}`;
  const sources = document.createElement("span");
  sources.className = "sources";
  sources.textContent = `matched: ${hit.sources.join(", ")}`;
  button.append(img, name, meta, sources);
  button.addEventListener("click", () => play(hit, hit.start, hit.end));
  const timeline = timelineBar(hit, range);
  item.append(button, ...(timeline ? [timeline] : []),
    ...hit.evidence.filter((evidence) => evidence.snippet !== null).map((evidence) => evidenceLine(hit, evidence)),
    downloadLink(hit), similarButton(hit));
  return item;
}

function scoreRange(hits) {
  // Bars are scaled over the whole page, so a video that matched nowhere looks flat beside one that matched.
  const scores = hits.flatMap((hit) => (hit.timeline ?? []).map((point) => point.score));
  return scores.length ? [Math.min(...scores), Math.max(...scores)] : [0, 1];
}

function timelineBar(hit, [low, high]) {
  // Where in the video the query matched: one bar per stretch (from its start to the next one's), as tall as
  // its score; clicking one plays from it. One tab stop: the arrow keys, Home and End move between the bars.
  const points = hit.timeline ?? [];
  if (points.length < 2) return null;
  const total = Math.max(hit.duration ?? 0, points[points.length - 1].end);
  const best = points.reduce((b, point, i) => (point.score > points[b].score ? i : b), 0);
  const bar = document.createElement("div");
  bar.className = "timeline";
  bar.setAttribute("role", "toolbar");
  bar.setAttribute("aria-label", `where it matched in ${hit.name}`);
  const segments = points.map((point, i) => {
    const until = i + 1 < points.length ? points[i + 1].start : point.end;
    const segment = document.createElement("button");
    segment.type = "button";
    segment.className = i === best ? "segment best" : "segment";
    segment.tabIndex = i === best ? 0 : -1;
    segment.dataset.start = point.start;
    segment.dataset.score = point.score;
    segment.style.left = `${(100 * point.start) / total}%`;
    segment.style.width = `${(100 * Math.max(until - point.start, 0)) / total}%`;
    const label = `${formatTime(point.start)}–${formatTime(point.end)}, score ${point.score.toFixed(3)}`;
    segment.title = label;
    segment.setAttribute("aria-label", `play ${label}`);
    const level = document.createElement("span");
    level.className = "level";
    level.style.height = `${15 + (85 * (point.score - low)) / Math.max(high - low, 1e-9)}%`;
    segment.append(level);
    segment.addEventListener("click", () => play(hit, point.start, point.end));
    return segment;
  });
  bar.append(...segments);
  bar.addEventListener("keydown", (event) => {
    const from = segments.indexOf(document.activeElement);
    const to = { ArrowLeft: from - 1, ArrowRight: from + 1, Home: 0, End: segments.length - 1 }[event.key];
    if (from < 0 || to === undefined) return;
    event.preventDefault();
    const next = segments[Math.min(Math.max(to, 0), segments.length - 1)];
    for (const segment of segments) segment.tabIndex = segment === next ? 0 : -1;
    next.focus();
  });
  return bar;
}

function evidenceLine(hit, evidence) {
  // What the video says there, matched words in <mark>; built from text nodes, so index text is never markup.
  const line = document.createElement("button");
  line.type = "button";
  line.className = "evidence";
  line.dataset.start = evidence.start ?? 0;
  line.title = `play from ${formatTime(evidence.start ?? 0)}`;
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = `${formatTime(evidence.start ?? 0)} ${evidence.source}${evidence.language ? ` (${evidence.language})` : ""}`;
  const snippet = document.createElement("span");
  snippet.className = "snippet";
  let at = 0;
  for (const [from, to] of evidence.highlights) {
    if (from < at || to <= from) continue;
    snippet.append(document.createTextNode(evidence.snippet.slice(at, from)));
    const mark = document.createElement("mark");
    mark.textContent = evidence.snippet.slice(from, to);
    snippet.append(mark);
    at = to;
  }
  snippet.append(document.createTextNode(evidence.snippet.slice(at)));
  line.append(when, snippet);
  line.addEventListener("click", () => play(hit, evidence.start, evidence.end));
  return line;
}

function downloadLink(hit) {
  // A moment downloads as an MP4 of that moment (cut by the server); a whole-video hit as the file itself.
  const link = document.createElement("a");
  link.className = "download";
  if (hit.start === null) {
    link.href = hit.file_url;
    link.textContent = "Download video";
    link.setAttribute("download", hit.name.split("/").pop());
  } else {
    const params = new URLSearchParams({ start: hit.start, end: hit.end ?? hit.start + 1 });
    link.href = `/api/videos/${hit.video_id}/clip?${params}`;
    link.textContent = `Download ${momentLabel(hit)}`;
    link.setAttribute("download", "");
  }
  link.setAttribute("aria-label", `${link.textContent} of ${hit.name}`);
  return link;
}

function similarButton(hit) {
  const more = document.createElement("button");
  more.type = "button";
  more.className = "similar";
  more.dataset.videoId = hit.video_id;
  more.textContent = "More like this";
  more.setAttribute("aria-label", `videos like ${hit.name}`);
  more.addEventListener("click", () => newSearch({ kind: "similar", videoId: hit.video_id }));
  return more;
}

function play(hit, from, to) {
  // from/to: the moment to play (the hit's, or one piece of its evidence); null: the whole video from its start
  const start = from ?? 0;
  const fragment = from === null ? "" : `#t=${start},${to ?? ""}`;
  playerPanel.hidden = false;
  playerCaption.textContent = `${hit.name} — ${momentLabel({ start: from, end: to })}`;
  player.dataset.videoId = hit.video_id;
  player.dataset.start = start;
  player.src = hit.file_url + fragment;
  // The media fragment seeks where supported; setting currentTime makes sure of it everywhere.
  player.addEventListener("loadedmetadata", () => {
    if (Math.abs(player.currentTime - start) > 0.05) player.currentTime = start;
    player.play().catch(() => {});
  }, { once: true });
  playerPanel.scrollIntoView({ behavior: "smooth", block: "start" });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const q = queryInput.value.trim();
  if (!q) {
    statusLine.textContent = "Type what to look for.";
    return;
  }
  newSearch({ kind: "text", q, mode: modeSelect.value });
});
uploadInput.addEventListener("change", () => {
  const file = uploadInput.files[0];
  if (file) newSearch({ kind: "upload", file });
});
document.getElementById("filters").addEventListener("submit", (event) => {
  // Enter in a filter re-runs the search on screen with the new filters, from its first page.
  event.preventDefault();
  if (current) newSearch(current);
});
document.getElementById("prev").addEventListener(
  "click", () => search(current, Math.max(0, current.offset - PAGE_SIZE)));
document.getElementById("next").addEventListener(
  "click", () => search(current, current.offset + PAGE_SIZE));
