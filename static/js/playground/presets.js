// Kernel presets and the textbook's worked examples for the playground.
// These are the student's inputs (grids and weights to start from), not results: every
// output, sum and size shown for them comes from the API.

/** Kernel presets offered for every kernel; fixed ones are 3 x 3 and set f = 3. */
export const KERNEL_PRESETS = [
  "identity",
  "box",
  "gaussian",
  "sharpen",
  "sobel_x",
  "sobel_y",
  "laplacian",
  "textbook",
  "random",
];

const FIXED = {
  sharpen: [
    [0, -1, 0],
    [-1, 5, -1],
    [0, -1, 0],
  ],
  sobel_x: [
    [-1, 0, 1],
    [-2, 0, 2],
    [-1, 0, 1],
  ],
  sobel_y: [
    [-1, -2, -1],
    [0, 0, 0],
    [1, 2, 1],
  ],
  laplacian: [
    [0, 1, 0],
    [1, -4, 1],
    [0, 1, 0],
  ],
  textbook: [
    [1, 0, 1],
    [0, 1, 0],
    [1, 0, 1],
  ],
};

/** True when a preset only exists as 3 x 3. */
export function isFixedSize(name) {
  return name in FIXED;
}

function filled(f, fn) {
  return Array.from({ length: f }, (_, r) => Array.from({ length: f }, (_, c) => fn(r, c)));
}

// Binomial coefficients: row f of Pascal's triangle, the discrete Gaussian of width f.
function binomialRow(f) {
  let row = [1];
  for (let i = 1; i < f; i++) row = [...row, 0].map((v, j) => v + (j > 0 ? row[j - 1] : 0));
  return row;
}

/** One f x f grid of a preset (a fixed preset ignores f and is 3 x 3). */
export function kernelGrid(name, f, random = Math.random) {
  if (name in FIXED) return FIXED[name].map((row) => [...row]);
  const mid = Math.floor((f - 1) / 2);
  switch (name) {
    case "identity":
      return filled(f, (r, c) => (r === mid && c === mid ? 1 : 0));
    case "box":
      return filled(f, () => 1 / (f * f));
    case "gaussian": {
      const row = binomialRow(f);
      const total = row.reduce((a, b) => a + b, 0) ** 2;
      return filled(f, (r, c) => (row[r] * row[c]) / total);
    }
    case "random":
      return filled(f, () => Math.floor(random() * 5) - 2);
    default:
      return filled(f, () => 0);
  }
}

/** A kernel for `channels` input channels: the same preset grid in every channel. */
export function kernelFor(name, f, channels, random = Math.random) {
  const size = name in FIXED ? 3 : f;
  return {
    w: Array.from({ length: channels }, () => kernelGrid(name, size, random)),
    b: 0,
    preset: name,
  };
}

/** A random grid of whole numbers 0-9, (channels, n, n). */
export function randomInput(channels, n, random = Math.random) {
  return Array.from({ length: channels }, () => filled(n, () => Math.floor(random() * 10)));
}

// --- the textbook's examples ------------------------------------------------------------

const EDGE_6 = Array.from({ length: 6 }, () => [10, 10, 10, 0, 0, 0]);
const VERTICAL_EDGE = [
  [1, 0, -1],
  [1, 0, -1],
  [1, 0, -1],
];
const FIVE = [
  [3, 1, 0, 2, 5],
  [6, 2, 4, 1, 0],
  [1, 7, 3, 0, 2],
  [0, 2, 5, 8, 1],
  [4, 1, 0, 3, 6],
];
// The curve detector of the tutorial: 30s along a curve, 0 elsewhere.
const CURVE_KERNEL = [
  [0, 0, 0, 0, 0, 30, 0],
  [0, 0, 0, 0, 30, 0, 0],
  [0, 0, 0, 30, 0, 0, 0],
  [0, 0, 0, 30, 0, 0, 0],
  [0, 0, 0, 30, 0, 0, 0],
  [0, 0, 0, 30, 0, 0, 0],
  [0, 0, 0, 0, 0, 0, 0],
];
// A patch of an image with the same curve drawn in it (ink 50, one fainter pixel 20).
const CURVE_PATCH = [
  [0, 0, 0, 0, 0, 50, 0],
  [0, 0, 0, 0, 50, 0, 0],
  [0, 0, 0, 50, 0, 0, 0],
  [0, 0, 0, 20, 0, 0, 0],
  [0, 0, 0, 50, 0, 0, 0],
  [0, 0, 50, 0, 0, 0, 0],
  [0, 50, 0, 0, 0, 0, 0],
];
// A patch whose ink lies where the detector has zeros.
const OTHER_PATCH = [
  [0, 0, 0, 0, 0, 0, 0],
  [0, 0, 0, 0, 0, 0, 0],
  [0, 0, 0, 0, 0, 0, 0],
  [0, 0, 0, 0, 0, 0, 0],
  [0, 0, 0, 0, 0, 0, 0],
  [50, 50, 50, 0, 0, 0, 0],
  [50, 50, 50, 50, 50, 50, 50],
];
// The three-channel demo: a 5 x 5 x 3 input and two 3 x 3 x 3 filters w0, w1.
const RGB_INPUT = [
  [
    [2, 1, 0, 2, 1],
    [0, 1, 2, 2, 0],
    [1, 0, 0, 2, 1],
    [2, 2, 1, 0, 0],
    [0, 1, 2, 1, 2],
  ],
  [
    [1, 0, 2, 1, 0],
    [2, 2, 0, 1, 1],
    [0, 1, 1, 0, 2],
    [1, 2, 0, 2, 1],
    [2, 0, 1, 1, 0],
  ],
  [
    [0, 2, 1, 0, 2],
    [1, 0, 2, 1, 1],
    [2, 1, 0, 0, 1],
    [0, 1, 2, 1, 0],
    [1, 2, 0, 2, 2],
  ],
];
const W0 = [
  [
    [1, -1, 0],
    [0, 1, -1],
    [-1, 0, 1],
  ],
  [
    [0, 1, 1],
    [-1, 0, 0],
    [1, -1, 0],
  ],
  [
    [-1, 0, 1],
    [1, 1, 0],
    [0, -1, -1],
  ],
];
const W1 = [
  [
    [0, 1, -1],
    [1, 0, 0],
    [-1, 1, 1],
  ],
  [
    [1, 0, -1],
    [0, -1, 1],
    [1, 0, 0],
  ],
  [
    [-1, 1, 0],
    [0, 0, 1],
    [1, -1, 0],
  ],
];
const POOL_4 = [
  [1, 1, 2, 4],
  [5, 6, 7, 8],
  [3, 2, 1, 0],
  [1, 2, 3, 4],
];

const convBase = {
  mode: "conv",
  padding: "valid",
  stride: 1,
  dilation: 1,
  activation: "none",
  slope: 0.1,
  pool: { after: false, mode: "max", kernel: 2, stride: 2 },
};

function kernel(w, b = 0, preset = null) {
  return { w: w.map((g) => g.map((row) => [...row])), b, preset };
}

/**
 * The textbook's examples, in the order of the book. Each is a full playground state plus
 * `cell`: the output cell the example is about (channel, y, x) and the lesson's message key.
 */
export const TEXTBOOK = [
  {
    name: "window-429",
    state: { ...convBase, input: [[[18, 54, 51], [55, 121, 75], [35, 24, 204]]], kernels: [kernel([FIXED.textbook], 0, "textbook")] },
    cell: [0, 0, 0],
  },
  {
    name: "six-valid",
    state: { ...convBase, input: [EDGE_6], kernels: [kernel([VERTICAL_EDGE])] },
    cell: [0, 0, 1],
  },
  {
    name: "six-pad",
    state: { ...convBase, padding: 1, input: [EDGE_6], kernels: [kernel([VERTICAL_EDGE])] },
    cell: [0, 0, 0],
  },
  {
    name: "stride-2",
    state: { ...convBase, stride: 2, input: [FIVE], kernels: [kernel([FIXED.textbook], 0, "textbook")] },
    cell: [0, 1, 1],
  },
  {
    name: "rgb-demo",
    state: {
      ...convBase,
      padding: 1,
      stride: 2,
      input: RGB_INPUT,
      kernels: [kernel(W0, 1), kernel(W1, 0)],
    },
    cell: [1, 1, 1],
  },
  {
    name: "maxpool-2s2",
    state: { ...convBase, mode: "pool", input: [POOL_4], kernels: [kernel([FIXED.textbook])], pool: { after: false, mode: "max", kernel: 2, stride: 2 } },
    cell: [0, 0, 1],
  },
  {
    name: "maxpool-3s1",
    state: { ...convBase, mode: "pool", input: [FIVE], kernels: [kernel([FIXED.textbook])], pool: { after: false, mode: "max", kernel: 3, stride: 1 } },
    cell: [0, 1, 1],
  },
  {
    name: "maxpool-3s2",
    state: { ...convBase, mode: "pool", input: [FIVE], kernels: [kernel([FIXED.textbook])], pool: { after: false, mode: "max", kernel: 3, stride: 2 } },
    cell: [0, 1, 0],
  },
  {
    name: "curve-match",
    state: { ...convBase, input: [CURVE_PATCH], kernels: [kernel([CURVE_KERNEL])] },
    cell: [0, 0, 0],
  },
  {
    name: "curve-blank",
    state: { ...convBase, input: [OTHER_PATCH], kernels: [kernel([CURVE_KERNEL])] },
    cell: [0, 0, 0],
  },
  {
    name: "transposed",
    state: {
      ...convBase,
      mode: "transposed",
      input: [[[1, 2], [3, 4]]],
      kernels: [kernel([[[1, 1, 1], [1, 1, 1], [1, 1, 1]]])],
      transposed: { stride: 2, padding: 0, output_padding: 0, dilation: 1 },
    },
    cell: [0, 2, 2],
  },
];

export const DEFAULT_TRANSPOSED = { stride: 2, padding: 0, output_padding: 0, dilation: 1 };

/** The page's first state: a random 6 x 6 grid and a Sobel x kernel. */
export function initialState(random = Math.random) {
  return {
    ...convBase,
    input: randomInput(1, 6, random),
    kernels: [kernelFor("sobel_x", 3, 1, random)],
    transposed: { ...DEFAULT_TRANSPOSED },
  };
}
