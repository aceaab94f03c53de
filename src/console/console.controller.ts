import {
  Body,
  CanActivate,
  Controller,
  ExecutionContext,
  Get,
  Header,
  HttpCode,
  Inject,
  Injectable,
  Param,
  Post,
  Req,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentActor, Public, Roles } from '../auth/principal.js';
import { DomainError, notFound } from '../common/errors/domain-error.js';
import { ConsoleAuthService } from './console-auth.service.js';
import { ThrottledErrorFilter } from './console.errors.js';
import {
  CreateInviteDto,
  InviteDto,
  InviteInfoDto,
  InviteTokenDto,
  SessionDto,
  SetPasswordDto,
  SignInDto,
  SignOutDto,
  SignUpDto,
} from './dto/console.dto.js';
import { InvitesService } from './invites.service.js';
import { ConsoleSessionsService, CSRF_HEADER } from './sessions.service.js';
import type { ConsoleRequest } from './sessions.service.js';

/**
 * Every POST here must carry X-Requested-With, even before a session exists: a cross-site form
 * cannot add it, so no other site can sign a browser in or out (login CSRF).
 */
@Injectable()
export class RequestedWithGuard implements CanActivate {
  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<FastifyRequest>();
    if (req.method !== 'GET' && req.method !== 'HEAD' && !req.headers[CSRF_HEADER]) {
      throw new DomainError('forbidden', 'console requests must send the X-Requested-With header');
    }
    return true;
  }
}

const CSRF_DOC = {
  name: 'X-Requested-With',
  required: true,
  description: 'Any value (the console sends "console"); without it: 403',
};

@ApiTags('console')
@UseFilters(ThrottledErrorFilter)
@UseGuards(RequestedWithGuard)
@Controller('v1/console')
export class ConsoleController {
  constructor(
    @Inject(ConsoleAuthService) private readonly auth: ConsoleAuthService,
    @Inject(ConsoleSessionsService) private readonly sessions: ConsoleSessionsService,
    @Inject(InvitesService) private readonly invites: InvitesService,
  ) {}

  @Post('sign-up')
  @Public()
  @Header('Cache-Control', 'no-store')
  @ApiHeader(CSRF_DOC)
  @ApiCreatedResponse({
    type: SessionDto,
    description:
      'Creates an account and its login and signs in (Set-Cookie console_session). SIGNUP_TRIAL_CREDIT is ' +
      'booked as an adjustment. 403 when SIGNUP_ENABLED is false; 409 when the email already signs in; ' +
      '429 (Retry-After) after 10 sign-ups from one address in a minute.',
  })
  @ApiTooManyRequestsResponse({ description: 'too_many_attempts, with Retry-After in seconds' })
  async signUp(
    @Body() dto: SignUpDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<SessionDto> {
    const signedIn = await this.auth.signUp(dto, req);
    res.header('Set-Cookie', signedIn.cookie);
    return signedIn.body;
  }

  @Post('sign-in')
  @Public()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiHeader(CSRF_DOC)
  @ApiOkResponse({
    type: SessionDto,
    description:
      'Sets an HttpOnly, SameSite=Lax session cookie (Secure behind https). The same 401 for an unknown ' +
      'email and a wrong password; more than 10 failures in a minute for an email or an address: 429.',
  })
  @ApiTooManyRequestsResponse({ description: 'too_many_attempts, with Retry-After in seconds' })
  async signIn(
    @Body() dto: SignInDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<SessionDto> {
    const signedIn = await this.auth.signIn(dto, req);
    res.header('Set-Cookie', signedIn.cookie);
    return signedIn.body;
  }

  @Post('sign-out')
  @Public()
  @HttpCode(204)
  @ApiHeader(CSRF_DOC)
  @ApiNoContentResponse({
    description:
      'Ends this session (everywhere: every session of this login) and clears the cookie; 204 also ' +
      'when there was no session.',
  })
  async signOut(
    @Body() dto: SignOutDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<void> {
    const session = await this.sessions.fromRequest(req);
    if (session) await this.sessions.end(session.tokenHash, dto.everywhere ?? false);
    res.header('Set-Cookie', this.sessions.clearCookie(req));
  }

  @Get('session')
  @Roles('customer')
  @ApiOkResponse({
    type: SessionDto,
    description: 'The signed-in login and its account; 401 when the session ended or expired',
  })
  session(@Req() req: ConsoleRequest): Promise<SessionDto> {
    const s = req.consoleSession;
    if (!s) throw notFound('console session (this request used a console key)');
    return this.auth.current(s);
  }

  @Post('invites/lookup')
  @Public()
  @HttpCode(200)
  @ApiHeader(CSRF_DOC)
  @ApiOkResponse({
    type: InviteInfoDto,
    description: 'Who an invite link is for; 400 naming token when it is invalid, used or expired',
  })
  lookupInvite(@Body() dto: InviteTokenDto): Promise<InviteInfoDto> {
    return this.invites.lookup(dto.token);
  }

  @Post('set-password')
  @Public()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiHeader(CSRF_DOC)
  @ApiOkResponse({
    type: SessionDto,
    description:
      "Uses an invite link once: sets the invited email's password, ends its other sessions and signs " +
      'in. 400 naming token when the link is invalid, used or expired.',
  })
  async setPassword(
    @Body() dto: SetPasswordDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ): Promise<SessionDto> {
    const signedIn = await this.auth.setPassword(dto, req);
    res.header('Set-Cookie', signedIn.cookie);
    return signedIn.body;
  }
}

@ApiTags('admin: accounts')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/admin/accounts')
export class AdminInvitesController {
  constructor(@Inject(InvitesService) private readonly invites: InvitesService) {}

  @Post(':id/invite')
  @Header('Cache-Control', 'no-store')
  @ApiCreatedResponse({
    type: InviteDto,
    description:
      'A one-time link (72 h) to set a console password for email on this account; for an email that ' +
      'already signs in here it resets the password. 409 when the email signs in to another account.',
  })
  invite(
    @Param('id') id: string,
    @Body() dto: CreateInviteDto,
    @CurrentActor() actor: string,
  ): Promise<InviteDto> {
    return this.invites.invite(id, dto.email, actor);
  }
}
