"""What the WebUI adds to Gradio's page: its style sheet, a small script, and the labels it renames.

``launch()`` takes them (Gradio 6: ``css``, ``head`` and ``i18n`` go to ``launch``).
The script does only what needs the browser: it sends a request to its lane (the
image's size is known there before any upload round trip), takes an image pasted
anywhere on the Upload tab, names the example thumbnails for screen readers, and
marks tiny images so that they scale up pixelated instead of blurred, and makes the
before/after handle a slider that the keyboard moves (Gradio's is drag-only).
"""

from __future__ import annotations

import json

import gradio as gr

from base.settings import Settings
from core import custom
from models.registry import MODELS
from ui import touchup
from ui.activity import HEAVY_PIXELS


def heavy_models(settings: Settings) -> list[str]:
    """The models that take seconds per image on a CPU (1024-pixel inputs), the server's own among
    them (``--custom-model``): they run in the heavy lane."""
    specs = [*MODELS.values(), *(custom.parse(entry)[0] for entry in settings.custom_model)]
    return [spec.name for spec in specs if spec.input_size >= 1024]


def css_rgb(hex_colour: str) -> str:
    """``#22c55e`` as the browser writes it in a style, without spaces: ``rgb(34,197,94)``."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r},{g},{b})"


#: The background colour swatches: (name, colour).
SWATCHES = [
    ("White", "#ffffff"),
    ("Light grey", "#e5e7eb"),
    ("Black", "#000000"),
    ("Red", "#dc2626"),
    ("Yellow", "#facc15"),
    ("Green", "#16a34a"),
    ("Blue", "#2563eb"),
]
#: Below this many pixels on the longer side an image is drawn with square pixels when scaled up.
TINY_SIDE = 128

SCRIPT = """
<style>
  /* Outside the app's own container, which Gradio scopes launch(css=...) to. */
  /* Contrast (WCAG AA, checked by axe-core in the browser tests): the Soft theme's indigo-500 under white text
     or on its own light tint is 4.5:1 or less; indigo-700 is 6:1 and more. The footer's grey is 2.4:1. */
  :root, .gradio-container { --primary-500: #4338ca !important; --primary-600: #3730a3 !important;
    --color-accent: #4338ca !important; --button-primary-background-fill-hover: #3730a3 !important;
    --body-text-color-subdued: #4b5563 !important; }
  footer, footer a, footer button, footer .built-with, footer .show-api, footer .settings { color: #4b5563 !important; }
  /* Gradio's toasts sit over the header's top right (the Run-on choice) for their 30 s: at the bottom
     they cover nothing that a person reads or presses while the error is new. */
  .toast-wrap { top: auto !important; bottom: var(--size-4, 16px); }
  @media (max-width: 640px) {
    .gradio-container > .main { padding-left: 10px !important; padding-right: 10px !important; }
  }
</style>
<script>
(() => {
  // Gradio's client (6.x) streams each request through a stand-in for EventSource whose close() only logs
  // "Method not implemented." (console.warn), twice a request: a harmless upstream stub (@gradio/client, its
  // fetch-based stream), not an error of this page. Only that exact message is dropped.
  const warn = console.warn.bind(console);
  const group = console.groupCollapsed.bind(console), end = console.groupEnd.bind(console);
  // Gradio's ImageEditor (Touch-up) calls PixiJS 7 methods that PixiJS 8 still runs but announces as deprecated
  // (Graphics#beginFill/drawRect/endFill, DRAW_MODES.NEAREST, fill(colour, alpha), render's second argument):
  // one collapsed console group each, when the editor first opens. PixiJS's own switch (its documented
  // `deprecation.quiet`) sits inside Gradio's bundle, out of a page's reach, and ImageEditor passes no such
  // flag: a workaround of that Gradio issue (js/imageeditor), to go when Gradio moves to the PixiJS 8 calls.
  // Dropped: only a group that PixiJS opens with its exact format string, the stack it warns inside (PixiJS
  // writes the three at once, synchronously), and that group's end.
  const PIXI_DEPRECATION = '%cPixiJS Deprecation Warning: %c%s';
  let inPixiGroup = false;
  console.groupCollapsed = (...args) => {
    if (args[0] === PIXI_DEPRECATION) { inPixiGroup = true; return; }
    group(...args);
  };
  console.groupEnd = (...args) => {
    if (inPixiGroup) { inPixiGroup = false; return; }
    end(...args);
  };
  console.warn = (...args) => {
    if (inPixiGroup) return;
    if (args.length === 1 && args[0] === 'Method not implemented.') return;
    warn(...args);
  };
})();
(() => {
  const HEAVY_PIXELS = __HEAVY_PIXELS__, TINY_SIDE = __TINY_SIDE__, HEAVY_MODELS = __HEAVY_MODELS__;
  const RESTORE = '__RESTORE__', ERASE = '__ERASE__';
  const q = (selector) => document.querySelector(selector);

  // The lanes: alpha matting, 4K+ images and the 1024-pixel models go to the heavy queue, so small
  // images on the quick models never wait behind them. The menu's label starts with the model's name.
  window.rembgRun = (what, matting) => {
    const img = q('#upload-image img');
    const pixels = img && img.naturalWidth ? img.naturalWidth * img.naturalHeight : 0;
    const menu = q('#model input');
    const model = menu && menu.value ? menu.value.split(' · ')[0].trim() : '';
    const lane = matting || pixels >= HEAVY_PIXELS || HEAVY_MODELS.includes(model) ? 'heavy' : 'light';
    const button = q(`#${what}-${lane}`);
    if (button) button.click();
  };

  // Paste an image anywhere on the Upload tab (not into a text field).
  document.addEventListener('paste', (event) => {
    const tab = q('#tab-upload');
    if (!tab || tab.offsetParent === null) return;
    if (event.target instanceof Element && event.target.closest('input:not([type=file]), textarea')) return;
    const file = [...(event.clipboardData ? event.clipboardData.files : [])].find((f) => f.type.startsWith('image/'));
    const input = q('#upload-image input[type=file]');
    if (!file || !input) return;
    event.preventDefault();
    event.stopPropagation();
    const transfer = new DataTransfer();
    transfer.items.add(new File([file], file.name || 'pasted.png', { type: file.type }));
    input.files = transfer.files;
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, true);

  // Gradio's "Upload file" source button only chooses the source that is already chosen (it clears the box and
  // opens nothing); here it does what it says: it opens the file chooser (the click is still the user's gesture).
  document.addEventListener('click', (event) => {
    const button = event.target instanceof Element && event.target.closest('[data-testid=source-select] button');
    if (!button || button.getAttribute('aria-label') !== 'Upload file') return;
    const box = button.closest('.block');
    setTimeout(() => {
      const input = box && box.querySelector('input[type=file]');
      if (input) input.click();
    }, 50);
  }, true);

  // A waiting line counts on by itself: "running for 3 s" becomes 4 s, 5 s... a second later (the server
  // sends it once, when the request joins its lane, and the next word is the run's own).
  const seen = new WeakMap();
  setInterval(() => {
    document.querySelectorAll('.status-wait').forEach((line) => {
      if (!seen.has(line)) seen.set(line, { at: Date.now(), html: line.innerHTML });
      const { at, html } = seen.get(line);
      const later = Math.floor((Date.now() - at) / 1000);
      line.innerHTML = html.replace(/running for (\\d+) s/g, (_, n) => `running for ${Number(n) + later} s`);
    });
  }, 1000);

  // Tiny images scale up with square pixels; every image load passes here (capture phase).
  document.addEventListener('load', (event) => {
    const img = event.target;
    if (!(img instanceof HTMLImageElement)) return;
    const tiny = img.naturalWidth > 0 && Math.max(img.naturalWidth, img.naturalHeight) < TINY_SIDE;
    img.classList.toggle('tiny', tiny);
    if (img.parentElement) img.parentElement.classList.remove('unshowable');
  }, true);
  // A file the browser cannot draw (not an image, TIFF, ...) gets a note instead of a broken sliver;
  // the engine still gets the file and says what it is.
  document.addEventListener('error', (event) => {
    const img = event.target;
    if (img instanceof HTMLImageElement && img.closest('#upload-image') && img.parentElement) {
      img.parentElement.classList.add('unshowable');
    }
  }, true);

  // Names for the example thumbnails (Gradio gives them none).
  const nameExamples = () => {
    document.querySelectorAll('#examples button, #examples [role=button], #examples tr').forEach((item) => {
      const img = item.querySelector('img');
      if (!img || item.getAttribute('aria-label')) return;
      const file = decodeURIComponent((img.getAttribute('src') || '').split('/').pop().split('?')[0]);
      const name = `Example: ${file.replace(/\\.[a-z0-9]+$/i, '')}`;
      item.setAttribute('aria-label', name);
      img.setAttribute('alt', name);
    });
  };
  // Names for the touch-up brush colours (Gradio's swatches are bare buttons).
  const nameBrushes = () => {
    document.querySelectorAll('#editor menu.swatch button.color').forEach((button) => {
      const colour = button.style.backgroundColor.replace(/\\s/g, '');
      const name = { [RESTORE]: 'Keep (green)', [ERASE]: 'Remove (red)' }[colour];
      if (name && button.getAttribute('aria-label') !== name) button.setAttribute('aria-label', name);
    });
  };
  // The live webcam's button is named "capture photo" by Gradio whatever it shows; name it by its text.
  const nameWebcamButtons = () => {
    document.querySelectorAll('#live button.capture-button').forEach((button) => {
      const text = button.innerText.trim();
      if (text && button.getAttribute('aria-label') !== text) button.setAttribute('aria-label', text);
    });
  };
  // The before/after handle as a WAI-ARIA slider: Gradio's is a drag-only div (role=none, not focusable).
  // The keys move it by replaying the drag Gradio listens for (d3-drag: a mousedown, then window moves).
  const STEPS = { ArrowLeft: -0.05, ArrowDown: -0.05, ArrowRight: 0.05, ArrowUp: 0.05, PageDown: -0.2, PageUp: 0.2 };
  // Where the picture is drawn in its box (object-fit: contain), as Gradio measures it for the handle.
  const pictureBox = (handle) => {
    const img = handle.parentElement.querySelector('img');
    const frame = (img && img.parentElement ? img.parentElement : handle.parentElement).getBoundingClientRect();
    if (!img || !img.naturalWidth || !frame.height) return frame;
    const ratio = img.naturalWidth / img.naturalHeight;
    const width = ratio > frame.width / frame.height ? frame.width : frame.height * ratio;
    return { left: frame.left + (frame.width - width) / 2, width };
  };
  const showValue = (handle, share) => {
    const percent = Math.round(share * 100);
    handle.dataset.share = String(share);
    handle.setAttribute('aria-valuenow', String(percent));
    handle.setAttribute('aria-valuetext', `${percent}% of the picture shows the original`);
  };
  const moveSlider = (handle, share) => {
    share = Math.min(Math.max(share, 0), 1);
    const picture = pictureBox(handle), at = handle.getBoundingClientRect();
    const y = at.top + at.height / 2;
    const fire = (type, x, on) => on.dispatchEvent(new MouseEvent(type, {
      bubbles: true, cancelable: true, view: window, clientX: x, clientY: y, button: 0, buttons: 1 }));
    fire('mousedown', at.left + at.width / 2, handle);
    fire('mousemove', picture.left + share * picture.width, window);
    fire('mouseup', picture.left + share * picture.width, window);
    showValue(handle, share);
  };
  const keyboardSliders = () => {
    document.querySelectorAll('#slider [data-testid=slider], #snap-slider [data-testid=slider]').forEach((handle) => {
      if (handle.dataset.keys) return;
      handle.dataset.keys = '1';
      handle.setAttribute('role', 'slider');
      handle.setAttribute('tabindex', '0');
      handle.setAttribute('aria-label', 'Before and after: the original on the left, the cutout on the right');
      handle.setAttribute('aria-valuemin', '0');
      handle.setAttribute('aria-valuemax', '100');
      handle.setAttribute('aria-orientation', 'horizontal');
      showValue(handle, 0.5);  // where Gradio starts it
      // A drag with the pointer moves it too: the number follows the handle.
      handle.addEventListener('pointerup', () => {
        const picture = pictureBox(handle), at = handle.getBoundingClientRect();
        showValue(handle, Math.min(Math.max((at.left + at.width / 2 - picture.left) / picture.width, 0), 1));
      });
      handle.addEventListener('keydown', (event) => {
        const now = Number(handle.dataset.share);
        let share = null;
        if (event.key in STEPS) share = now + STEPS[event.key];
        else if (event.key === 'Home') share = 0;
        else if (event.key === 'End') share = 1;
        if (share === null) return;
        event.preventDefault();
        moveSlider(handle, share);
      });
    });
  };
  // Gradio's drop zones are named "Click to upload or drop files" (or the like) whatever they say; the name
  // that a speech user says is the text shown ("Drop an image here..."), so the name starts with it.
  const nameDropZones = () => {
    const zones = ['Click to upload or drop files', 'Drop an image file here to upload', 'Paste from clipboard']
      .map((name) => `[aria-label="${name}"]`).join(', ');
    document.querySelectorAll(zones).forEach((zone) => {
      const text = zone.innerText.replace(/\\s+/g, ' ').trim();
      const name = zone.getAttribute('aria-label');
      if (text && !name.includes(text)) zone.setAttribute('aria-label', `${text} (${name.toLowerCase()})`);
    });
  };
  // Gradio's empty boxes carry an aria-label on a bare div (an ARIA error): they are pictures of "nothing yet".
  const nameEmptyBoxes = () => {
    document.querySelectorAll('.empty[aria-label]:not([role])').forEach((box) => box.setAttribute('role', 'img'));
  };
  new MutationObserver(() => {
    nameExamples(); nameBrushes(); nameWebcamButtons(); keyboardSliders(); nameEmptyBoxes(); nameDropZones();
  })
    .observe(document.documentElement, { childList: true, subtree: true });
})();
</script>
"""
for _token, _value in {
    "__HEAVY_PIXELS__": str(HEAVY_PIXELS),
    "__TINY_SIDE__": str(TINY_SIDE),
    "__RESTORE__": css_rgb(touchup.RESTORE),
    "__ERASE__": css_rgb(touchup.ERASE),
}.items():
    SCRIPT = SCRIPT.replace(_token, _value)


def head(settings: Settings) -> str:
    """The page's script, knowing this server's heavy models."""
    return SCRIPT.replace("__HEAVY_MODELS__", json.dumps(heavy_models(settings)))


CHECKERBOARD = "repeating-conic-gradient(#e2e8f0 0% 25%, #ffffff 0% 50%) 0 0 / 20px 20px"

CSS = """
/* Header: one compact line, the provider toggle on the right. */
#header { align-items: center; justify-content: space-between; flex-wrap: wrap; gap: 4px 24px; }
#header > #brand { flex: 1 1 300px; }
#brand h1 { font-size: 1.5rem; margin: 0; line-height: 1.2; }
#brand span { font-size: 0.85rem; color: #4b5563; }
#runon { flex: 0 1 auto !important; flex-wrap: wrap; align-items: center; gap: 2px 16px; width: auto; }
#provider { display: flex; align-items: center; flex: 0 0 auto !important; min-width: 0 !important;
  overflow: visible !important; padding: 0; }
#provider .wrap { flex-wrap: nowrap; align-items: center; gap: 6px; }
#provider [data-testid=block-info] { position: static; width: auto; height: auto; margin: 0 8px 0 0; clip: auto;
  overflow: visible; white-space: nowrap; font-weight: 600; }
#provider-note { flex: 0 1 auto !important; min-width: 0 !important; }
#provider-note details, #more-models details { margin: 0; }
#status .html-container, #snap-status .html-container, #gallery-status-line .html-container,
#provider-note .html-container, #brand .html-container { padding: 0; }
#provider-note .unavailable summary { cursor: pointer; font-size: 0.85rem; color: #374151; }
#provider-note .unavailable summary span { white-space: nowrap; }
#provider-note .short { display: none; }
#provider-note .unavailable ul { font-size: 0.85rem; margin: 4px 0 0 1em; max-width: 40em; }
.more-models summary { cursor: pointer; font-size: 0.9rem; }
.more-models code { font-size: 0.85em; }
#download .empty, #snap-slider + div .empty { min-height: 0; height: 48px; }
#download, #gallery-downloads { min-height: 0; }

/* Transparent pixels show as a checkerboard, not as white (the slider's copies have it drawn in). */
#gallery img, #live-out img { background: __CHECKERBOARD__; }
img.tiny { image-rendering: pixelated; }
#slider img.tiny, #upload-image img.tiny, #snap-slider img.tiny {
  width: 100%; height: 100%; object-fit: contain;
}
/* An image box keeps its size whatever it holds (a 16x16 image, a broken file). */
.unshowable img { display: none; }
.unshowable::after {
  content: "This browser cannot show this file. Remove background sends it to the server, which decodes it \
or says why not.";
  display: block; padding: 48px 24px; text-align: center; opacity: 0.75; font-size: 0.95rem;
}
/* Errors are spelt out in the status line under the button, not as a bare badge on the outputs. */
#slider [data-testid=status-tracker]:has(span.error), #snap-slider [data-testid=status-tracker]:has(span.error),
#gallery [data-testid=status-tracker]:has(span.error), #editor [data-testid=status-tracker]:has(span.error) {
  display: none;
}
#upload-image, #slider { min-height: 260px; }
#upload-image .image-container, #upload-image .upload-container { min-height: 220px; }

/* The before/after handle, when the keyboard has it. */
[data-testid=slider][role=slider]:focus-visible { outline: 3px solid var(--color-accent); outline-offset: 2px; }
/* Focus is visible on every control (test_focus_is_visible_on_every_control): Gradio's primary buttons, its radio
   buttons (Run on, Precision, the gallery's format) and the table's grid show no change of their own when the
   keyboard reaches them. A ring in the accent colour (8:1 on white; written out, as inside a primary button
   Gradio's --color-accent is white), only for keyboard focus (:focus-visible). A radio button's or a checkbox's
   ring goes round its label: on the chosen pill, itself in the accent colour, a ring on the input would not show. */
button:focus-visible, a:focus-visible, summary:focus-visible, [tabindex]:not(input):not(textarea):focus-visible,
label:has(> input[type=radio]:focus-visible), label:has(> input[type=checkbox]:focus-visible) {
  outline: 3px solid #4338ca !important; outline-offset: 2px;
}
#gallery-status [tabindex]:focus-visible { outline-offset: -3px; }  /* inside the table's own frame */

/* The run row: the model and the button under the input. */
/* The model's words on a line of their own, so that the closed menu shows them whole at every width. */
#run-row { align-items: stretch; gap: 8px; flex-wrap: wrap; }
#run { min-height: 44px; white-space: nowrap; }
#model, #run { flex: 1 1 100% !important; min-width: 0 !important; }
#model .wrap-inner::before { content: "Model"; align-self: center; margin-right: 8px; font-size: 0.8rem;
  font-weight: 600; color: #4b5563; }

/* The status line under the button: an error stays readable until the next run. */
.status { min-height: 1.4em; padding: 4px 8px; border-radius: 6px; font-size: 0.9rem; }
.status:empty, .status-idle { padding: 0; }
.status-wait { background: #fef9c3; color: #713f12; }
.status-run { color: #3730a3; }
.status-done { color: #166534; }
.status-error { background: #fee2e2; color: #991b1b; border: 1px solid #fca5a5; }

/* Background swatches: colour squares with their names kept for screen readers. */
#swatches .wrap { gap: 4px; flex-wrap: nowrap; }
#swatches label {
  width: 24px; height: 24px; min-width: 0; padding: 0; border-radius: 50%; border: 1px solid #94a3b8;
  justify-content: center; font-size: 0; box-shadow: none;
}
/* The picker's own swatch shows the colour chosen: outlined, so that white shows on white. */
#colour .dialog-button { border: 1px solid #94a3b8; width: 40px; height: 28px; border-radius: 6px; }
#swatches label.selected { outline: 3px solid var(--color-accent); outline-offset: 2px; }
#swatches input { opacity: 0; position: absolute; }
__SWATCHES__
#colour-row { align-items: center; gap: 8px; }
.option-group { gap: 8px; }

/* The read-outs. */
.readout-empty { color: #4b5563; font-size: 0.9rem; padding: 8px 0; }
.last-title { font-size: 0.9rem; margin-bottom: 6px; }
.chip { color: #fff; border-radius: 4px; padding: 1px 6px; font-size: 0.8rem; font-weight: 600; }
.stagebar { display: flex; height: 22px; border-radius: 5px; overflow: hidden; background: #e2e8f0; }
.stagebar .seg { min-width: 2px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; padding: 0; margin: 6px 0 0;
  font-size: 0.8rem; }
.legend i, .dot { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
table.history { font-size: 0.85rem; width: 100%; border-collapse: collapse; }
table.history caption { text-align: left; font-size: 0.8rem; opacity: 0.7; caption-side: top; }
table.history td, table.history th { padding: 3px 8px; border-bottom: 1px solid #e2e8f0; text-align: left; }
figure.recent { margin: 0; }
figure.recent figcaption { font-size: 0.8rem; opacity: 0.7; }
figure.recent svg { width: 100%; height: auto; font-size: 11px; fill: currentColor; }
figure.recent .axis line { stroke: #94a3b8; }

.last-sentence { font-size: 1rem; font-weight: 600; margin: 0 0 8px; }
.last-details, .history-box, .recent-box { margin-top: 6px; }
.last-details summary, .history-box summary, .recent-box summary { cursor: pointer; font-size: 0.85rem; }
.known-models li { margin-bottom: 4px; }

/* The webcam: frames per second beside the video. */
#live-row { gap: 4px; }
#live button { white-space: nowrap; }
/* Nothing over the pictures (test_no_webcam_control_covers_the_live_video). Gradio draws its Start live/Stop
   button over the bottom of the video, and the boxes' labels and the cutout's icons over their tops; here the
   labels take a line of their own above the picture (as Gradio's own unfloated label does), the cutout's icons
   sit on that line at the box's right (their wrapper is placed against the block once the image container is
   static), and the button (the snapshot's too) a line of its own under the video. Only Gradio's unhashed hooks
   are used: data-testid attributes and the plain class names (button-wrap, image-container), not the svelte-xxxx
   classes, which change with each Gradio build. */
#live [data-testid=block-label], #live-out [data-testid=block-label], #snapshot [data-testid=block-label] {
  position: static; margin: var(--block-label-margin) 0 var(--block-label-margin) var(--block-label-margin);
}
#live-out .image-container { position: static; }
#live [data-testid=webcam-video] ~ .button-wrap, #snapshot [data-testid=webcam-video] ~ .button-wrap {
  position: static; transform: none; width: fit-content; margin: var(--size-2) auto; box-shadow: none;
}
.fps { font-variant-numeric: tabular-nums; font-size: 0.95rem; }

/* A phone: one column; the boxes shorter, so the result and its download fit the first screen. */
@media (max-width: 640px) {
  #brand span { display: none; }
  #brand h1 { font-size: 1.2rem; }
  #header { gap: 4px; }
  * { --layout-gap: 8px !important; }
  #header { gap: 0; }
  #runon { gap: 0 8px; }
  #provider-note { flex-basis: 100% !important; }
  .status { min-height: 0; padding: 2px 6px; }
  #provider-note .long { display: none; }
  #provider-note .short { display: inline; }
  #upload-image { height: 210px !important; min-height: 0; }
  #slider { height: auto !important; min-height: 0; }
  #slider img { max-height: 210px !important; }
  #slider .empty { height: 160px; min-height: 0; }
  #upload-image .image-container, #upload-image .upload-container { min-height: 0; }
  #examples { display: none; }
  #run-row { gap: 6px; }
  #run { font-size: 0.95rem; padding: 0 8px; min-height: 40px; }
  /* The live video and its cutout one under the other: side by side, the image's buttons covered its label and
     the Stop button most of the video. */
  #live-model, #gallery-model { padding: 6px 6px !important; }
  #live-pair { flex-direction: column; flex-wrap: nowrap; }
  #live-pair > * { flex: 0 0 auto !important; width: 100% !important; min-width: 0 !important; }
  /* The readout's panels one under another, each the width of the screen. */
  #readout-row { flex-direction: column; flex-wrap: nowrap; }
  #readout-row > * { flex: 0 0 auto !important; width: 100% !important; min-width: 0 !important; }
  #model .wrap-inner::before { display: none; }
  #tabs button[role=tab] { padding-left: 8px; padding-right: 8px; }
}
""".replace("__CHECKERBOARD__", CHECKERBOARD).replace(
    "__SWATCHES__",
    "\n".join(
        f'#swatches label[data-testid="{name}-radio-label"] {{ background: {value}; }}' for name, value in SWATCHES
    ),
)

#: Gradio's webcam button says "Record"/"Stop" (its audio strings); the live mode says what it does.
I18N = gr.I18n(en={"audio.record": "Start live", "audio.stop": "Stop"})
