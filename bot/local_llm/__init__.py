"""The opt-in offline language model: ``model`` assembles the packaged GGUF and starts ``server`` (a
llama-cpp-python server that streams real ``tool_calls``) on 127.0.0.1. Nothing else of ours is imported.
"""
