module github.com/kiosk-pipelines/kiosk-pipelines/tools/argo-validate

go 1.26.5

require github.com/argoproj/argo-workflows/v4 v4.1.4
