// A minimal publish/subscribe helper.

export class Emitter {
  constructor() {
    this.handlers = new Map();
  }

  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type)?.delete(handler);
  }

  emit(type, detail) {
    for (const handler of this.handlers.get(type) || []) {
      try {
        handler(detail);
      } catch (err) {
        console.error(`handler for ${type} failed`, err);
      }
    }
  }
}
