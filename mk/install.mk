include mk/version.mk
