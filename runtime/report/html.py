"""Render :class:`~imm_faces.runtime.report.model.ReportData` as one self-contained HTML page.

Everything is inline (style, script, embedded thumbnails); the page's Content-Security-Policy allows nothing
else to load: no font, no script, no request but the pictures themselves (``data:`` URIs, or the presigned
object links when thumbnails are not embedded). The one script runs because the policy names its SHA-256
(:func:`script_source`): no other inline script or event handler does, so an escaping slip cannot run one.
Every value from IMM is HTML-escaped. Every ``<img>`` has alt text. Keyboard: Tab or j/k (arrows too) move between
clusters, ``f`` shows failed clusters only, ``/`` searches by name or id, Esc clears.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from urllib.parse import urlsplit

from imm_faces.runtime.report.images import COVER_PX, PHOTO_HEIGHT_PX
from imm_faces.runtime.report.model import Box, Card, Photo, Picture, ReportData

_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#5d6678;--line:#dfe3ea;--ok:#127a3e;--okbg:#e6f4ea;
--bad:#b3261e;--badbg:#fdecea;--warn:#8a5a00;--warnbg:#fff4d6;--accent:#2457c5;--box:#ffd60a}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--ink);
background:var(--bg)}
header,.summary,.toolbar,main,footer{max-width:1280px;margin:0 auto;padding:0 20px}
header{padding-top:22px}
h1{font-size:22px;margin:0 0 4px}
.meta{color:var(--mute);margin:0}
.verdict{display:inline-block;font-weight:700;border-radius:999px;padding:2px 12px;margin-left:8px;font-size:13px;
vertical-align:3px}
.verdict.ok{background:var(--okbg);color:var(--ok)}.verdict.bad{background:var(--badbg);color:var(--bad)}
.summary{display:grid;grid-template-columns:minmax(260px,1fr) minmax(300px,1.3fr);gap:16px;margin-top:16px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.panel h2{font-size:14px;margin:0 0 10px;color:var(--mute);text-transform:uppercase;letter-spacing:.04em}
.tiles{display:grid;grid-template-columns:repeat(4,1fr);gap:8px}
.tile{border-radius:8px;background:var(--bg);padding:8px 10px}
.tile b{display:block;font-size:24px;line-height:1.2}
.totals{margin-top:12px}
.tile.bad b{color:var(--bad)}.tile.ok b{color:var(--ok)}
.hist{width:100%;border-collapse:collapse}
.hist td,.hist th{padding:2px 6px;font-weight:400;text-align:left;white-space:nowrap}
.hist th{color:var(--mute);width:1%}.hist td.n{width:1%;text-align:right;font-variant-numeric:tabular-nums}
.bar{height:14px;background:var(--accent);border-radius:3px;min-width:1px}
details.checks{grid-column:1/-1}
details.checks summary{cursor:pointer;font-weight:600}
.checks table{border-collapse:collapse;width:100%;margin-top:8px}
.checks td{border-top:1px solid var(--line);padding:4px 6px;vertical-align:top}
.checks tr.failed td:first-child{color:var(--bad);font-weight:700}
.checks tr.passed td:first-child{color:var(--ok)}
.checks tr.skipped td:first-child{color:var(--mute)}
.notes{color:var(--warn);background:var(--warnbg);border-radius:8px;padding:8px 12px;grid-column:1/-1;margin:0}
.toolbar{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:18px auto 10px}
.toolbar button,.toolbar input{font:inherit;border:1px solid var(--line);background:var(--card);border-radius:8px;
padding:6px 12px;color:var(--ink)}
.toolbar button[aria-pressed=true]{background:var(--ink);color:#fff;border-color:var(--ink)}
.toolbar input{min-width:240px}
.keys{color:var(--mute);font-size:12px}
kbd{border:1px solid var(--line);border-bottom-width:2px;border-radius:4px;padding:0 4px;font-size:11px;
background:var(--card)}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px;padding-bottom:30px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px;display:grid;
grid-template-columns:__COVER__px 1fr;gap:8px 14px;content-visibility:auto;contain-intrinsic-size:auto 250px;
outline:none}
.card.fail{border:2px solid var(--bad);box-shadow:0 0 0 3px var(--badbg)}
.card:focus-visible,.card:focus{box-shadow:0 0 0 3px var(--accent)}
.cover{width:__COVER__px;height:__COVER__px;border-radius:10px;overflow:hidden;background:#e9ecf1;position:relative}
.cover img{display:block;width:100%;height:100%;object-fit:cover}
.cover.linked img{position:absolute;max-width:none;height:auto;object-fit:fill}
.none{display:flex;align-items:center;justify-content:center;text-align:center;color:var(--mute);font-size:12px;
padding:6px;height:100%}
.info h3{margin:0;font-size:17px}
.info h3 .unnamed{color:var(--mute);font-weight:500;font-style:italic}
.id{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;color:var(--mute);word-break:break-all}
.facts{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.fact{background:var(--bg);border-radius:6px;padding:2px 8px}.fact b{font-variant-numeric:tabular-nums}
.result{border-radius:8px;padding:6px 10px;margin:0}
.result.ok{background:var(--okbg);color:var(--ok)}
.result.bad{background:var(--badbg);color:var(--bad)}
.result ul{margin:4px 0 0;padding-left:18px}
.result code{font-weight:700}
.problems{color:var(--warn);background:var(--warnbg);border-radius:8px;padding:4px 10px;margin:6px 0 0;font-size:12px}
.strip{grid-column:1/-1;display:flex;gap:8px;overflow-x:auto;padding:4px 0 2px;margin:0;list-style:none}
.strip li{flex:none}
.strip figure{margin:0;display:inline-block;vertical-align:top}
.photo{position:relative;display:inline-block;vertical-align:top;height:__PHOTO__px;border-radius:6px;overflow:hidden;
background:#e9ecf1}
.photo img{display:block;height:__PHOTO__px;width:auto}
.photo .none{width:__PHOTO__px}
.box{position:absolute;border:2px solid var(--box);box-shadow:0 0 0 1px rgba(0,0,0,.55);border-radius:2px}
.strip figcaption{font-size:11px;color:var(--mute);width:0;min-width:100%;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}
.more{grid-column:1/-1;color:var(--mute);font-size:12px;margin:0}
.hidden{display:none!important}
footer{color:var(--mute);font-size:12px;padding-bottom:30px}
@media (max-width:700px){.summary{grid-template-columns:1fr}main{grid-template-columns:1fr}
.card{grid-template-columns:80px 1fr}.cover{width:80px;height:80px}}
""".replace("__COVER__", str(COVER_PX)).replace("__PHOTO__", str(PHOTO_HEIGHT_PX))

_JS = """
(function(){
  var main=document.getElementById('clusters'),search=document.getElementById('search'),
      onlyFailed=document.getElementById('only-failed'),all=document.getElementById('show-all'),
      shown=document.getElementById('shown'),cards=[].slice.call(main.querySelectorAll('.card'));
  function visible(){return cards.filter(function(c){return !c.classList.contains('hidden');});}
  function apply(){
    var q=search.value.trim().toLowerCase(),failed=onlyFailed.getAttribute('aria-pressed')==='true',n=0;
    cards.forEach(function(c){
      var hide=(failed&&!c.classList.contains('fail'))||(q&&c.getAttribute('data-search').indexOf(q)<0);
      c.classList.toggle('hidden',hide);if(!hide)n++;});
    shown.textContent=n+' of '+cards.length+' shown';
  }
  function setFailed(on){onlyFailed.setAttribute('aria-pressed',on?'true':'false');
    all.setAttribute('aria-pressed',on?'false':'true');apply();}
  onlyFailed.addEventListener('click',function(){setFailed(true);});
  all.addEventListener('click',function(){setFailed(false);});
  search.addEventListener('input',apply);
  function move(step){
    var v=visible();if(!v.length)return;var i=v.indexOf(document.activeElement);
    var next=i<0?(step>0?0:v.length-1):Math.max(0,Math.min(v.length-1,i+step));
    v[next].focus();v[next].scrollIntoView({block:'nearest'});
  }
  document.addEventListener('keydown',function(e){
    if(e.altKey||e.ctrlKey||e.metaKey)return;
    if(e.target===search){if(e.key==='Escape'||e.key==='Enter'){search.blur();if(e.key==='Escape'){search.value='';apply();}}return;}
    var k=e.key;
    if(k==='j'||k==='ArrowDown'||k==='ArrowRight'){move(1);}
    else if(k==='k'||k==='ArrowUp'||k==='ArrowLeft'){move(-1);}
    else if(k==='Home'){move(-1e9);}else if(k==='End'){move(1e9);}
    else if(k==='/'){search.focus();}
    else if(k==='f'){setFailed(onlyFailed.getAttribute('aria-pressed')!=='true');}
    else if(k==='Escape'){search.value='';setFailed(false);}
    else return;
    e.preventDefault();
  });
  apply();
})();
"""


def script_source(script: str) -> str:
    """The CSP source that lets exactly this inline script run (its SHA-256, over the text between the tags)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _label(card: Card) -> str:
    return card.name or card.custom_id or f"unnamed cluster {card.object_id[:16]}"


def _age(card: Card) -> str | None:
    if card.min_age is None and card.max_age is None:
        return None if card.average_age is None else f"~{card.average_age:g}"
    text = f"{card.min_age or 0:g}–{card.max_age or 0:g}"
    return text + (f" (avg {card.average_age:.0f})" if card.average_age is not None else "")


def _cover(card: Card) -> str:
    label = _label(card)
    picture = card.cover
    if picture is None:
        reason = card.cover_problem or ("no Cover" if not card.cover_uri else "no picture")
        none = f'<div class="none" role="img" aria-label="No cover face: {_e(reason)}">{_e(reason)}</div>'
        return f'<div class="cover">{none}</div>'
    alt = f"Cover face of {label}"
    if picture.crop is None:
        cls = "cover"
        style = ""
    else:  # a linked full picture, cropped by the browser
        cls = "cover linked"
        c = picture.crop
        style = (
            f' style="width:{COVER_PX / c.width:.1f}px;left:{-c.left * COVER_PX / c.width:.1f}px;'
            f'top:{-c.top * COVER_PX / c.height:.1f}px"'
        )
    lazy = "" if picture.src.startswith("data:") else ' loading="lazy" referrerpolicy="no-referrer"'
    return f'<div class="{cls}"><img src="{_e(picture.src)}" alt="{_e(alt)}"{style}{lazy} decoding="async"></div>'


def _boxes(boxes: list[Box]) -> str:
    return "".join(
        f'<span class="box" style="left:{_pct(b.left)};top:{_pct(b.top)};'
        f'width:{_pct(b.width)};height:{_pct(b.height)}"></span>'
        for b in boxes
    )


def _photo(photo: Photo, label: str) -> str:
    picture: Picture | None = photo.picture
    if picture is None:
        reason = photo.problem or "no picture"
        inner = f'<div class="none" role="img" aria-label="{_e(photo.filename)}: {_e(reason)}">{_e(reason)}</div>'
    else:
        faces = len(photo.boxes)
        alt = f"{photo.filename}: " + (
            f"{faces} face{'s' if faces != 1 else ''} of {label} marked" if faces else f"a photo of {label}"
        )
        size = ""
        if picture.width and picture.height:
            size = f' width="{round(PHOTO_HEIGHT_PX * picture.width / picture.height)}" height="{PHOTO_HEIGHT_PX}"'
        lazy = "" if picture.src.startswith("data:") else ' loading="lazy" referrerpolicy="no-referrer"'
        inner = f'<img src="{_e(picture.src)}" alt="{_e(alt)}"{size}{lazy} decoding="async">{_boxes(photo.boxes)}'
    return (
        f'<li><figure><div class="photo">{inner}</div>'
        f'<figcaption title="{_e(photo.uri)}">{_e(photo.filename)}</figcaption></figure></li>'
    )


def _card(card: Card, index: int) -> str:
    label = _label(card)
    status = "passed" if card.passed else f"failed {len(card.failures)} check{'s' if len(card.failures) != 1 else ''}"
    title = _e(card.name) if card.name else '<span class="unnamed">Unnamed cluster</span>'
    facts = [("Faces", card.face_count), ("Images", card.image_count), ("Gender", card.gender), ("Age", _age(card))]
    if card.custom_id:
        facts.insert(0, ("CustomId", card.custom_id))
    fact_html = "".join(f'<span class="fact">{k} <b>{_e(v)}</b></span>' for k, v in facts if v is not None)
    if card.passed:
        result = '<p class="result ok">✓ Every check passed</p>'
    else:
        items = "".join(f"<li><code>{_e(f.check)}</code>: {_e(f.detail)}</li>" for f in card.failures)
        result = f'<div class="result bad"><strong>✗ {_e(status.capitalize())}</strong><ul>{items}</ul></div>'
    problems = "".join(f'<p class="problems">{_e(p)}</p>' for p in card.problems)
    strip = "".join(_photo(p, label) for p in card.photos)
    total = card.files_total
    more = ""
    if card.photos and total is not None and total > len(card.photos):
        more = f'<p class="more">{len(card.photos)} of {total} files shown</p>'
    elif not card.photos and not card.problems:
        more = '<p class="more">No file names this cluster.</p>'
    search = " ".join(x for x in (card.name, card.custom_id, card.object_id) if x).lower()
    return (
        f'<article class="card {"pass" if card.passed else "fail"}" tabindex="0" id="c{index}" '
        f'data-id="{_e(card.object_id)}" data-search="{_e(search)}" aria-label="{_e(label)}: {_e(status)}">'
        f"{_cover(card)}"
        f'<div class="info"><h3>{title}</h3><div class="id">{_e(card.object_id)}</div>'
        f'<div class="facts">{fact_html}</div>{result}{problems}</div>'
        f"{f'<ul class=strip>{strip}</ul>' if strip else ''}{more}</article>"
    )


def _histogram(rows: list[tuple[str, int]]) -> str:
    top = max((n for _, n in rows), default=0) or 1
    body = "".join(
        f'<tr><th scope="row">{_e(label)}</th><td><div class="bar" style="width:{n / top * 100:.1f}%"></div></td>'
        f'<td class="n">{n}</td></tr>'
        for label, n in rows
    )
    return (
        '<table class="hist"><caption class="keys" style="text-align:left">clusters by FaceCount</caption>'
        f"<tbody>{body}</tbody></table>"
    )


def _origins(data: ReportData) -> list[str]:
    srcs = [c.cover.src for c in data.cards if c.cover] + [
        p.picture.src for c in data.cards for p in c.photos if p.picture
    ]
    found = set()
    for src in srcs:
        if not src.startswith("data:"):
            parts = urlsplit(src)
            found.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(found)


def _tiles(data: ReportData) -> str:
    passed = data.checked_clusters - data.failed_clusters
    return (
        f'<div class="tile"><b>{data.total_clusters}</b>found</div>'
        f'<div class="tile"><b>{data.checked_clusters}</b>checked</div>'
        f'<div class="tile ok"><b>{passed}</b>passed</div>'
        f'<div class="tile{" bad" if data.failed_clusters else ""}"><b>{data.failed_clusters}</b>failed</div>'
    )


def _failed_checks(data: ReportData) -> int:
    return sum(1 for r in data.checks if r.status == "failed")


def _totals(data: ReportData) -> str:
    faces = sum(c.face_count or 0 for c in data.cards)
    images = sum(c.image_count or 0 for c in data.cards)
    largest = max((c.face_count or 0 for c in data.cards), default=0)
    return (
        f'<p class="meta totals">{faces} faces on {images} images in the clusters shown; the largest holds {largest}'
        f" faces. Checks: {len(data.checks)} run, {_failed_checks(data)} failed.</p>"
    )


def _checks(data: ReportData) -> str:
    """The checks panel, open when one failed."""
    failed = _failed_checks(data)
    rows = "".join(
        f'<tr class="{_e(r.status)}"><td>{_e(r.status)}</td><td><code>{_e(r.id)}</code></td><td>{_e(r.rule)}</td>'
        f"<td>{r.checked} checked{f', {r.failed} failed' if r.failed else ''}"
        f"{f'<br><small>{_e(r.note)}</small>' if r.note else ''}</td></tr>"
        for r in data.checks
    )
    return (
        f'<details class="checks panel"{" open" if failed else ""}><summary>Checks: {len(data.checks)} run, '
        f"{failed} failed</summary><table><tbody>{rows}</tbody></table></details>"
    )


def _csp(data: ReportData, script: str) -> str:
    """The page's Content-Security-Policy: its pictures' origins, its styles, and its one script by hash."""
    img_src = " ".join(["data:", *_origins(data)])
    return (
        f"default-src 'none'; img-src {img_src}; style-src 'unsafe-inline'; script-src {script_source(script)}; "
        "base-uri 'none'; form-action 'none'"
    )


def render(data: ReportData) -> str:
    """The whole page, self-contained."""
    verdict = '<span class="verdict ok">PASSED</span>' if data.passed else '<span class="verdict bad">FAILED</span>'
    if data.images == "embedded":
        pictures = "thumbnails embedded"
    else:
        pictures = f"pictures are presigned links, valid until {_e(data.links_expire)}"
    notes = "".join(f'<p class="notes">{_e(n)}</p>' for n in data.notes)
    cards = "".join(_card(c, i) for i, c in enumerate(data.cards)) or (
        '<p class="more">No figure cluster was checked: see the checks above.</p>'
    )
    failed_cards = sum(1 for c in data.cards if not c.passed)
    network = "" if data.images == "embedded" else " but the linked pictures"
    script = _JS  # emitted as is below: the policy names its hash
    csp = _csp(data, script)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="generator" content="imm-faces verify --html">
<title>{_e(data.title)}</title><style>{_CSS}</style></head>
<body>
<header><h1>{_e(data.title)} {verdict}</h1>
<p class="meta">{_e(data.endpoint)} · generated {_e(data.generated)} · {pictures}</p></header>
<section class="summary" aria-label="Summary">
<div class="panel"><h2>Figure clusters</h2><div class="tiles">{_tiles(data)}</div>{_totals(data)}</div>
<div class="panel"><h2>Cluster sizes</h2>{_histogram(data.size_histogram)}</div>
{_checks(data)}{notes}
</section>
<nav class="toolbar" aria-label="Filter">
<button type="button" id="show-all" aria-pressed="true">All ({len(data.cards)})</button>
<button type="button" id="only-failed" aria-pressed="false">Failed only ({failed_cards})</button>
<input type="search" id="search" placeholder="Search name, CustomId or id" aria-label="Search clusters">
<span id="shown" class="keys" aria-live="polite"></span>
<span class="keys"><kbd>j</kbd>/<kbd>k</kbd> or arrows: next/previous cluster · <kbd>f</kbd>: failed only ·
<kbd>/</kbd>: search · <kbd>Esc</kbd>: clear</span>
</nav>
<main id="clusters" data-count="{len(data.cards)}" aria-label="Figure clusters">{cards}</main>
<footer>Made by <code>imm-faces verify --html</code> for {_e(data.project)}/{_e(data.dataset)}. Boxes mark this
cluster's faces (IMM's Boundary). The page loads nothing from the network{network}.</footer>
<script>{script}</script>
</body></html>
"""
