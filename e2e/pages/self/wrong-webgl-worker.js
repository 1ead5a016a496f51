// A self-hosted worker entry whose WebGL is broken the way a buggy driver is: it initialises and
// runs, but every float it hands back is off. The patch module is evaluated first.
import './corrupt-webgl.js';
import './hearth-worker.js';
