/**
 * The built-in plugins, registered into the default registry on import.
 *
 * @module
 */
import { registry } from "../core/registry.ts";
import { gradCam } from "./grad_cam.ts";
import { gradualExtrapolation } from "./gradual_extrapolation.ts";

export { gradCam, gradualExtrapolation };

registry.register(gradCam);
registry.register(gradualExtrapolation);
