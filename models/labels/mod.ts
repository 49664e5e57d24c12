/**
 * Class-name lists shipped with the package, selectable by name (`--labels imagenet`).
 *
 * @module
 */

/** Built-in label lists by name. */
export const BUILTIN_LABELS: Readonly<Record<string, URL>> = Object.freeze({
  /** The 1000 ImageNet classes in torchvision's order (see `README.md` for the source). */
  imagenet: new URL("./imagenet.json", import.meta.url),
});
