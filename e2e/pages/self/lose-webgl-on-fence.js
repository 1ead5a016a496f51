/* global self */
// With lose-webgl.js: the first fence tfjs sets loses its context.
self.loseWebglOnFence = true;
