/**
 * The built-in plugins, registered into the default registry on import.
 *
 * @module
 */
import { registry } from "../core/registry.ts";
import { gradCam } from "./grad_cam.ts";
import { gradualExtrapolation } from "./gradual_extrapolation.ts";
import { gradCamPlusPlus } from "./grad_cam_plus_plus.ts";
import { xgradCam } from "./xgrad_cam.ts";
import { layerCam } from "./layer_cam.ts";
import { hiresCam } from "./hires_cam.ts";
import { gradCamElementwise } from "./grad_cam_elementwise.ts";
import { eigenCam } from "./eigen_cam.ts";
import { scoreCam } from "./score_cam.ts";
import { gradient } from "./gradient.ts";
import { gradientXInput } from "./gradient_x_input.ts";
import { guidedBackprop } from "./guided_backprop.ts";
import { deconvnet } from "./deconvnet.ts";
import { smoothGrad } from "./smooth_grad.ts";
import { integratedGradients } from "./integrated_gradients.ts";
import { contrastiveExcitationBackprop, excitationBackprop } from "./excitation_backprop.ts";

export { gradCam, gradualExtrapolation };
export {
  deconvnet,
  eigenCam,
  gradCamElementwise,
  gradCamPlusPlus,
  gradient,
  gradientXInput,
  guidedBackprop,
  hiresCam,
  integratedGradients,
  layerCam,
  scoreCam,
  smoothGrad,
  xgradCam,
};

registry.register(gradCam);
registry.register(gradualExtrapolation);
registry.register(excitationBackprop);
registry.register(contrastiveExcitationBackprop);
registry.register(gradCamPlusPlus);
registry.register(xgradCam);
registry.register(layerCam);
registry.register(hiresCam);
registry.register(gradCamElementwise);
registry.register(eigenCam);
registry.register(scoreCam);
registry.register(gradient);
registry.register(gradientXInput);
registry.register(guidedBackprop);
registry.register(deconvnet);
registry.register(smoothGrad);
registry.register(integratedGradients);
