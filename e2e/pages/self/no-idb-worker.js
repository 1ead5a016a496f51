// A self-hosted worker entry in a browser whose IndexedDB refuses to open, as private modes do.
import './no-indexeddb.js';
import './hearth-worker.js';
