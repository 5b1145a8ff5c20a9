/* Convolution backward solvers: the rows of the backward-data and backward-weights registries.
 * They share the forward's row type and problem; clcnn__conv_args then carries the gradients. */
#ifndef CLCNN_CONV2D_BWD_IMPL_H
#define CLCNN_CONV2D_BWD_IMPL_H

#include "conv2d_impl.h"

/* In a backward row's run(), args->y is dy (read). Backward data writes args->x (dx) and reads
 * args->w (w_tensor is w's handle, for caching data derived from it). Backward weights writes
 * args->w (dw, w_tensor NULL) and reads args->x. args->bias is NULL. */
extern const clcnn__conv_solver clcnn__conv_bwd_data_direct;
extern const clcnn__conv_solver clcnn__conv_bwd_data_gemm;
extern const clcnn__conv_solver clcnn__conv_bwd_weights_direct;
extern const clcnn__conv_solver clcnn__conv_bwd_weights_gemm;
extern const clcnn__conv_solver clcnn__conv_bwd_weights_igemm;
extern const clcnn__conv_solver clcnn__conv_bwd_data_winograd2;
extern const clcnn__conv_solver clcnn__conv_bwd_data_winograd4;
extern const clcnn__conv_solver clcnn__conv_bwd_data_winograd4_split;
extern const clcnn__conv_solver clcnn__conv_bwd_data_rows;
extern const clcnn__conv_solver clcnn__conv_bwd_weights_rows;

/* The algorithm the forward's AUTO picks for the forward problem that computes backward data
 * (stride 1, one group), or AUTO when there is none. */
clcnn_conv_algo clcnn__conv_bwd_data_rotated_auto(const clcnn__conv_problem *pb,
                                                  const clcnn_device *dev);

/* Tests only: with [in] on, direct_rows packs the weights on every run (forward and backward
 * data), not only where their stream jumps past the stride prefetchers, so that the packing's
 * calls are exercised on small problems. Affects later workspace_size and run calls. */
void clcnn__conv_rows_force_pack(bool on);

/* Tests only: caps implicit_gemm's chunk of images at [in] bytes of workspace (a chunk always
 * holds one image; 0 restores the default). Affects later workspace_size and run calls. */
void clcnn__conv_igemm_limit_chunk(size_t bytes);

#endif
