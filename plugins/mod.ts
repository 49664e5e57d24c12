/**
 * The built-in plugins, registered into the default registry on import: the CAM family
 * (Grad-CAM, Grad-CAM++, XGrad-CAM, Layer-CAM, HiResCAM, Eigen-CAM, Score-CAM, Grad-CAM
 * element-wise), excitation backprop and c-EB, input-gradient methods (gradient, gradient x
 * input, guided backprop, deconvnet, SmoothGrad, Integrated Gradients) and the gradual
 * extrapolator.
 *
 * @module
 */
import { registry } from "../core/registry.ts";
import type { Plugin } from "../core/types.ts";
import { deconvnet } from "./deconvnet.ts";
import { eigenCam } from "./eigen_cam.ts";
import { contrastiveExcitationBackprop, excitationBackprop } from "./excitation_backprop.ts";
import { gradCam } from "./grad_cam.ts";
import { gradCamElementwise } from "./grad_cam_elementwise.ts";
import { gradCamPlusPlus } from "./grad_cam_plus_plus.ts";
import { gradient } from "./gradient.ts";
import { gradientXInput } from "./gradient_x_input.ts";
import { gradualExtrapolation } from "./gradual_extrapolation.ts";
import { gradualPlus } from "./gradual_plus.ts";
import { guidedBackprop } from "./guided_backprop.ts";
import { hiresCam } from "./hires_cam.ts";
import { integratedGradients } from "./integrated_gradients.ts";
import { layerCam } from "./layer_cam.ts";
import { scoreCam } from "./score_cam.ts";
import { smoothGrad } from "./smooth_grad.ts";
import { xgradCam } from "./xgrad_cam.ts";

// Option declarations and the typed options they give.
export { CEB_OPTIONS, type CebOptions, EB_OPTIONS, type EbOptions } from "./excitation_backprop.ts";
export { GRADUAL_OPTIONS, type GradualOptions } from "./gradual_extrapolation.ts";
export {
  INTEGRATED_GRADIENTS_OPTIONS,
  type IntegratedGradientsOptions,
} from "./integrated_gradients.ts";
export { SMOOTH_GRAD_OPTIONS, type SmoothGradOptions } from "./smooth_grad.ts";
export {
  contrastiveExcitationBackprop,
  deconvnet,
  eigenCam,
  excitationBackprop,
  gradCam,
  gradCamElementwise,
  gradCamPlusPlus,
  gradient,
  gradientXInput,
  gradualExtrapolation,
  guidedBackprop,
  hiresCam,
  integratedGradients,
  layerCam,
  scoreCam,
  smoothGrad,
  xgradCam,
};

/** Every built-in plugin, in the order `gradual list` shows them. */
export const BUILTIN_PLUGINS: readonly Plugin[] = [
  gradCam,
  excitationBackprop,
  contrastiveExcitationBackprop,
  gradCamPlusPlus,
  xgradCam,
  layerCam,
  hiresCam,
  gradCamElementwise,
  eigenCam,
  scoreCam,
  gradient,
  gradientXInput,
  guidedBackprop,
  deconvnet,
  smoothGrad,
  integratedGradients,
  gradualExtrapolation,
  gradualPlus,
];

for (const p of BUILTIN_PLUGINS) registry.register(p);
