/* Test seam of the fully connected layer: which GEMM it runs. */
#ifndef CLCNN_LINEAR_IMPL_H
#define CLCNN_LINEAR_IMPL_H

typedef enum clcnn__linear_engine {
    CLCNN__LINEAR_AUTO,    /* the kernel on CPU devices, CLBlast elsewhere */
    CLCNN__LINEAR_CLBLAST, /* CLBlast's SGEMM everywhere */
    CLCNN__LINEAR_OWN,     /* clcnn_gemm_outer everywhere */
} clcnn__linear_engine;

/* Forces an engine for the calls that follow (tests). Not thread-safe. */
void clcnn__linear_force_engine(clcnn__linear_engine engine);

#endif
