#pragma once
#include <cblas.h>
// LAPACK (bundled inside libopenblas): Cholesky factorisation and solve in double precision.
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda,
             double *b, const int *ldb, int *info);
