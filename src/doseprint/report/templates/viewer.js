// The preview page's 3D view: three.js imported from the module inlined in the page as
// base64 (a blob URL, so the page needs no network and works opened as a local file), a small orbit
// controller (drag to rotate, wheel or buttons to zoom) and a vertical cut-away plane.
// document.body.dataset.viewer tells how it went: "ready", "no-webgl" or "error: ...".

const root = document.getElementById("viewer");
const say = (state, text) => {
  document.body.dataset.viewer = state;
  if (text) {
    const note = root.querySelector(".viewer-note");
    note.textContent = text;
    note.hidden = false;
  }
};

const decode = (b64, Kind) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Kind(bytes.buffer);
};

async function main() {
  const models = JSON.parse(document.getElementById("doseprint-models").textContent);
  const canvas = root.querySelector("canvas");
  // Ask for WebGL 2 first so a browser without it gets a note, not an exception.
  const gl = canvas.getContext("webgl2", { antialias: true, preserveDrawingBuffer: true });
  if (!gl) {
    say("no-webgl", "The 3D view needs WebGL 2, which this browser does not offer; " +
      "the dimensions and curves below are complete without it.");
    return;
  }
  const source = decode(document.getElementById("three-module").textContent.trim(), Uint8Array);
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const THREE = await import(url);
  URL.revokeObjectURL(url);

  const renderer = new THREE.WebGLRenderer({ canvas, context: gl });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.setClearColor(0xffffff, 1);
  renderer.localClippingEnabled = true;

  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(30, 1, 0.1, 2000);
  camera.up.set(0, 0, 1);
  scene.add(camera);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x808080, 1.6));
  const lamp = new THREE.DirectionalLight(0xffffff, 1.8);
  lamp.position.set(-1, 1, 2);
  camera.add(lamp);

  // Cut-away: everything in front of the plane y = cut (towards the default camera) goes.
  const plane = new THREE.Plane(new THREE.Vector3(0, 1, 0), 1e6);
  const view = { azimuth: -Math.PI / 2 + 0.6, elevation: 0.45, distance: 1, radius: 1 };
  const centre = new THREE.Vector3();
  const box = new THREE.Box3();
  let group = null;

  function show(model) {
    if (group) {
      group.traverse((o) => { if (o.isMesh) { o.geometry.dispose(); o.material.dispose(); } });
      scene.remove(group);
    }
    group = new THREE.Group();
    for (const part of model.parts) {
      const geometry = new THREE.BufferGeometry();
      geometry.setAttribute("position",
        new THREE.BufferAttribute(decode(part.positions, Float32Array), 3));
      geometry.setIndex(new THREE.BufferAttribute(decode(part.indices, Uint32Array), 1));
      const outside = new THREE.Mesh(geometry, new THREE.MeshStandardMaterial({
        color: part.colour, roughness: 0.7, metalness: 0.0, flatShading: true,
        clippingPlanes: [plane],
      }));
      // Seen through the cut, the inside faces are drawn flat in a darker shade so a
      // compartment reads as solid; pushed back in depth so faces shared by two
      // compartments show the outside one.
      const inside = new THREE.Mesh(geometry, new THREE.MeshBasicMaterial({
        color: new THREE.Color(part.colour).multiplyScalar(0.75), side: THREE.BackSide,
        clippingPlanes: [plane], polygonOffset: true, polygonOffsetFactor: 2,
        polygonOffsetUnits: 2,
      }));
      outside.name = inside.name = part.name;
      group.add(outside, inside);
    }
    scene.add(group);
    box.setFromObject(group);
    box.getCenter(centre);
    view.radius = box.getSize(new THREE.Vector3()).length() / 2;
    view.distance = view.radius / Math.sin((camera.fov / 2) * Math.PI / 180) * 0.8;
    root.querySelector(".viewer-size").textContent =
      `tablet ${model.tablet}: ${model.summary}; overall ${model.size_mm.join(" × ")} mm ` +
      "(x × y × z)";
    cut();
  }

  function draw() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    const c = Math.cos(view.elevation);
    camera.position.set(
      centre.x + view.distance * c * Math.cos(view.azimuth),
      centre.y + view.distance * c * Math.sin(view.azimuth),
      centre.z + view.distance * Math.sin(view.elevation));
    camera.near = Math.max(view.distance - 2 * view.radius, 0.01);
    camera.far = view.distance + 2 * view.radius;
    camera.lookAt(centre);
    camera.updateProjectionMatrix();
    renderer.render(scene, camera);
  }

  const slider = root.querySelector("input.cut");
  function cut() {
    const s = Number(slider.value) / 100;
    plane.constant = s > 0 ? -(box.min.y + s * (box.max.y - box.min.y)) : 1e6;
    draw();
  }
  slider.addEventListener("input", cut);

  const zoom = (factor) => {
    view.distance = Math.min(Math.max(view.distance * factor, view.radius * 1.5),
      view.radius * 20);
    draw();
  };
  root.querySelector("button.zoom-in").addEventListener("click", () => zoom(0.8));
  root.querySelector("button.zoom-out").addEventListener("click", () => zoom(1.25));
  root.querySelector("button.reset").addEventListener("click", () => {
    view.azimuth = -Math.PI / 2 + 0.6;
    view.elevation = 0.45;
    show(models[Number(picker.value)]);
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    zoom(Math.exp(e.deltaY * 0.001));
  }, { passive: false });

  let drag = null;
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    view.azimuth -= (e.clientX - drag.x) * 0.01;
    view.elevation = Math.min(Math.max(view.elevation + (e.clientY - drag.y) * 0.01, -1.5), 1.5);
    drag = { x: e.clientX, y: e.clientY };
    draw();
  });
  const stop = () => { drag = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);

  const picker = root.querySelector("select.design");
  models.forEach((m, k) => picker.add(new Option(`tablet ${m.tablet}: ${m.summary}`, k)));
  picker.hidden = models.length < 2;
  picker.addEventListener("change", () => show(models[Number(picker.value)]));
  window.addEventListener("resize", draw);

  show(models[0]);
  say("ready");
}

main().catch((e) => say("error: " + e, "The 3D view could not be drawn: " + e));
