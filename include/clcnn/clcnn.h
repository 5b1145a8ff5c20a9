/* clcnn: convolutional neural networks on any OpenCL device. Includes every public header. */
#ifndef CLCNN_CLCNN_H
#define CLCNN_CLCNN_H

#include "clcnn/api.h"
#include "clcnn/status.h"
#include "clcnn/log.h"
#include "clcnn/device.h"
#include "clcnn/program.h"
#include "clcnn/tensor.h"
#include "clcnn/npy.h"
#include "clcnn/conv.h"
#include "clcnn/model.h"
#include "clcnn/data.h"
#include "clcnn/net.h"
#include "clcnn/pool.h"
#include "clcnn/act.h"
#include "clcnn/linear.h"
#include "clcnn/loss.h"
#include "clcnn/optim.h"
#include "clcnn/dropout.h"
#include "clcnn/weights.h"
#include "clcnn/sched.h"

#endif
