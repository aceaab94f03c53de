import { ApiProperty } from '@nestjs/swagger';

export class WebhookAckDto {
  @ApiProperty({ example: true }) received!: true;
  @ApiProperty({
    description: 'true when this event id was processed before: nothing was done again',
  })
  duplicate!: boolean;
  @ApiProperty({
    example: 'credited',
    description: 'What processing the event did (or did first time round)',
  })
  outcome!: string;
}
