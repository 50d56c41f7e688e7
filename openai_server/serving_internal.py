"""text-generation-webui's internal API over the engine contract: the wire requests of
openai_server/protocol_internal.py in, contract calls out (tokenize, detokenize, logits,
chat_prompt, stop_generation), textgen's answer shapes back."""

from __future__ import annotations

from openai_server.protocol import ChatCompletionRequest
from openai_server.protocol_internal import (
    ChatPromptResponse,
    DecodeRequest,
    DecodeResponse,
    EncodeRequest,
    EncodeResponse,
    LogitsRequest,
    TokenCountResponse,
)
from openai_server.serving import CompletionService
from openai_server.translate import conversation
from src import contract


class InternalService:
    """/v1/internal/encode, decode, token-count, logits, chat-prompt and stop-generation."""

    def __init__(self, engine: contract.Engine, completions: CompletionService) -> None:
        self.engine = engine
        self.completions = completions

    async def encode(self, body: EncodeRequest) -> EncodeResponse:
        model = await self.completions.model_id(body.model)
        result = await self.engine.tokenize(contract.TokenizeRequest(model=model, prompt=body.text))
        return EncodeResponse(tokens=result.tokens, length=result.count)

    async def token_count(self, body: EncodeRequest) -> TokenCountResponse:
        return TokenCountResponse(length=(await self.encode(body)).length)

    async def decode(self, body: DecodeRequest) -> DecodeResponse:
        model = await self.completions.model_id(body.model)
        result = await self.engine.detokenize(contract.DetokenizeRequest(tokens=body.tokens, model=model))
        return DecodeResponse(text=result.prompt)

    async def logits(self, body: LogitsRequest) -> dict[str, float]:
        """textgen's answer: ``{token text: probability}``, most likely first (a text that
        two tokens share adds up)."""
        model = await self.completions.model_id(body.model)
        asked = contract.LogitsRequest(prompt=body.prompt, model=model, use_samplers=body.use_samplers,
                                       top_logits=body.top_logits, temperature=body.temperature,
                                       top_p=body.top_p, top_k=body.top_k, min_p=body.min_p)
        probs: dict[str, float] = {}
        for token, p in (await self.engine.logits(asked)).probs:
            probs[token] = probs.get(token, 0.0) + p
        return probs

    async def chat_prompt(self, body: ChatCompletionRequest) -> ChatPromptResponse:
        """The prompt the messages render to with the model's chat template (the messages as
        sent: h2oGPT's system prompt and document context are not added)."""
        model = await self.completions.model_id(body.model)
        asked = contract.TokenizeRequest(model=model, messages=conversation(body.messages),
                                         chat_template=getattr(body, "chat_template", None) or "",
                                         prompt_type=getattr(body, "prompt_type", None) or "")
        return ChatPromptResponse(prompt=(await self.engine.chat_prompt(asked)).prompt)

    async def stop_generation(self, requester: contract.Requester) -> int:
        """Stop the caller's running answers; how many there were."""
        return (await self.engine.stop_generation(contract.StopRequest(requester=requester))).stopped
