/**
 * A tiny XML reader for Pascal VOC annotation files: elements, text and the five
 * predefined entities plus numeric character references. Attributes are read past and
 * dropped, comments / processing instructions / doctype are skipped, CDATA is text.
 * Enough for VOC's `annotation/object/name/bndbox/difficult/truncated`; not a general
 * XML parser (no namespaces, no DTD entities).
 *
 * @module
 */

/** One element: its tag name, child elements and concatenated direct text. */
export interface XmlElement {
  /** Tag name. */
  name: string;
  /** Child elements in document order. */
  children: XmlElement[];
  /** Direct text content (entities decoded, not trimmed). */
  text: string;
  /** 1-based line of the start tag, for error messages. */
  line: number;
}

/** A syntax error in an XML document (message: `line N: what is wrong`). */
export class XmlError extends Error {
  /**
   * Creates the error.
   *
   * @param line 1-based line number
   * @param problem what is wrong
   */
  constructor(line: number, problem: string) {
    super(`line ${line}: ${problem}`);
    this.name = "XmlError";
  }
}

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

function decodeEntities(s: string, line: number): string {
  return s.replace(/&([^;&\s]*);/g, (_, name: string): string => {
    if (name in ENTITIES) return ENTITIES[name];
    const m = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(name);
    if (m) {
      const code = m[1][0] === "x" ? parseInt(m[1].slice(1), 16) : parseInt(m[1], 10);
      if (code <= 0x10ffff) return String.fromCodePoint(code);
    }
    throw new XmlError(line, `unknown entity '&${name};'`);
  });
}

/**
 * Parses an XML document into its root element.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { childText, parseXml } from "./xml.ts";
 * const root = parseXml("<annotation><object><name>dog</name></object></annotation>");
 * assert.equal(childText(root.children[0], "name"), "dog");
 * ```
 *
 * @param text the document
 * @returns the root element
 * @throws {XmlError} for malformed documents (unclosed or mismatched tags, stray text)
 */
export function parseXml(text: string): XmlElement {
  let pos = 0;
  let line = 1;
  const advance = (to: number): void => {
    for (let i = pos; i < to; i++) if (text.charCodeAt(i) === 10) line++;
    pos = to;
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (pos < text.length) {
    const lt = text.indexOf("<", pos);
    const end = lt < 0 ? text.length : lt;
    if (end > pos) {
      const chunk = text.slice(pos, end);
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(chunk, line);
      else if (chunk.trim() !== "") throw new XmlError(line, "text outside the root element");
      advance(end);
    }
    if (lt < 0) break;
    const skipTo = (close: string, what: string): void => {
      const e = text.indexOf(close, pos);
      if (e < 0) throw new XmlError(line, `unterminated ${what}`);
      advance(e + close.length);
    };
    if (text.startsWith("<!--", pos)) skipTo("-->", "comment");
    else if (text.startsWith("<?", pos)) skipTo("?>", "processing instruction");
    else if (text.startsWith("<![CDATA[", pos)) {
      const e = text.indexOf("]]>", pos);
      if (e < 0) throw new XmlError(line, "unterminated CDATA section");
      const top = stack[stack.length - 1];
      if (!top) throw new XmlError(line, "CDATA outside the root element");
      top.text += text.slice(pos + 9, e);
      advance(e + 3);
    } else if (text.startsWith("<!", pos)) skipTo(">", "declaration");
    else {
      const gt = text.indexOf(">", pos);
      if (gt < 0) throw new XmlError(line, "unterminated tag");
      const body = text.slice(pos + 1, gt);
      const startLine = line;
      advance(gt + 1);
      if (body.startsWith("/")) {
        const name = body.slice(1).trim();
        const top = stack.pop();
        if (!top) throw new XmlError(startLine, `closing tag </${name}> without an open tag`);
        if (top.name !== name) {
          throw new XmlError(
            startLine,
            `expected </${top.name}> (opened on line ${top.line}), found </${name}>`,
          );
        }
        continue;
      }
      const selfClosing = body.endsWith("/");
      const m = /^([A-Za-z_][\w.:-]*)/.exec(body);
      if (!m) throw new XmlError(startLine, `malformed tag <${body.slice(0, 20)}>`);
      const el: XmlElement = { name: m[1], children: [], text: "", line: startLine };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw new XmlError(startLine, "more than one root element");
      else root = el;
      if (!selfClosing) stack.push(el);
    }
  }
  if (stack.length) {
    const top = stack[stack.length - 1];
    throw new XmlError(line, `<${top.name}> (line ${top.line}) is never closed`);
  }
  if (!root) throw new XmlError(line, "no root element");
  return root;
}

/**
 * The first child element called `name`, if any.
 *
 * @param el the parent
 * @param name tag name
 * @returns the child or undefined
 */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

/**
 * The trimmed text of the first child called `name`, if that child exists.
 *
 * @param el the parent
 * @param name tag name
 * @returns the text or undefined
 */
export function childText(el: XmlElement, name: string): string | undefined {
  const c = child(el, name);
  return c === undefined ? undefined : c.text.trim();
}
