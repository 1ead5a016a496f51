/* global IDBFactory, DOMException */
// Every open is refused the way a private window refuses it.
IDBFactory.prototype.open = function () {
  throw new DOMException('IndexedDB is not available in private browsing', 'InvalidStateError');
};
