#pragma once
#include <cblas.h>
// LAPACK (bundled inside libopenblas): Cholesky factorisation and solve in double precision.
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda,
             double *b, const int *ldb, int *info);
// Packed-storage twins: a symmetric matrix as one triangle (n(n+1)/2 values), half the memory.
void dpptrs_(const char *uplo, const int *n, const int *nrhs, const double *ap, double *b, const int *ldb, int *info);
// Symmetric eigensolver (divide and conquer): eigenvalues ascending, eigenvectors in place (AlphaEdit's projector).
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);
