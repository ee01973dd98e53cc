// Pins the Karpenter AWS provider module whose pkg/apis/crds/ give the shape of NodePool
// (karpenter.sh/v1) and EC2NodeClass (karpenter.k8s.aws/v1), read by pipelines/lint/crds.py from
// the module cache; nothing is vendored. Not built. v1.13.1 is the newest whose go line (1.26.5) the
// toolchain of tools/argo-validate satisfies (v1.14.1 asks for go 1.26.6).
module github.com/kiosk-pipelines/kiosk-pipelines/tools/karpenter-crds

go 1.26.5

require github.com/aws/karpenter-provider-aws v1.13.1
